// `tessera store migrate`: copies a SQLite store into PostgreSQL
// (src/store/store_migration.h; docs/store.md, "Moving to PostgreSQL").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "store/pg_connection.h"
#include "store/store_migration.h"

namespace tessera::cli {
namespace {

struct MigrateFlags {
  store::MigrationOptions options;
};

void PrintCounts(const char* table, const store::RowCounts& counts) {
  std::printf("  %-17s %lld copied, %lld skipped (already there)\n", table, static_cast<long long>(counts.copied),
              static_cast<long long>(counts.skipped));
}

int RunMigrate(const MigrateFlags& flags) {
  const store::MigrationOptions& options = flags.options;
  std::printf("copying %s into %s%s\n", store::SqliteSourcePath(options.from).c_str(),
              store::pg::RedactConninfo(options.to).c_str(), options.merge ? " (merge)" : "");
  std::fflush(stdout);
  auto counts = store::MigrateSqliteToPostgres(options, [](std::string_view table, const store::RowCounts& so_far,
                                                           int64_t total) {
    std::printf("%.*s: %lld/%lld (%lld copied, %lld skipped)\n", static_cast<int>(table.size()), table.data(),
                static_cast<long long>(so_far.copied + so_far.skipped), static_cast<long long>(total),
                static_cast<long long>(so_far.copied), static_cast<long long>(so_far.skipped));
    std::fflush(stdout);
  });
  if (!counts.ok()) {
    std::fprintf(stderr, "tessera store migrate: %s\n", counts.status().message().c_str());
    return 1;
  }
  std::printf("done:\n");
  PrintCounts("jobs", counts->jobs);
  PrintCounts("webhooks", counts->webhooks);
  PrintCounts("webhook attempts", counts->webhook_attempts);
  PrintCounts("batches", counts->batches);
  PrintCounts("batch images", counts->batch_images);
  return 0;
}

}  // namespace

void AddStoreCommand(CLI::App& app, CommandRunner* runner) {
  CLI::App* store = app.add_subcommand("store", "Operations on the job store (docs/store.md)");
  store->require_subcommand(1);
  auto flags = std::make_shared<MigrateFlags>();
  CLI::App* migrate = store->add_subcommand(
      "migrate",
      "Copy a SQLite store (jobs with their history, webhook registrations and delivery attempts, image batches) "
      "into PostgreSQL, keeping ids, statuses, attempts, timestamps and FIFO order. Stop the server first (refused "
      "while it holds the file). Refused when the target already holds jobs, unless --merge. One transaction per "
      "500 jobs or per batch: an interrupted copy is finished by running it again with --merge.");
  migrate->add_option("--from", flags->options.from, "The SQLite database, or the data folder holding state.db")
      ->required();
  migrate->add_option("--to", flags->options.to, "The PostgreSQL database: a postgresql://user@host/db URL")
      ->required();
  migrate->add_flag("--merge", flags->options.merge,
                    "Copy into a database that already holds jobs: rows whose id it holds are skipped and counted");
  migrate->callback([runner, flags] { *runner = [flags] { return RunMigrate(*flags); }; });
}

}  // namespace tessera::cli
