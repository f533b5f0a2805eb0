// A small RAII layer over libpq: one connection, its results, and the values a
// statement is given. Our own rather than libpqxx (Debian 12 ships 6.4, which
// predates C++20 and reports errors by exception; every store call must answer
// with a Status instead).
//
// Statements are always parameterised ($1, $2...: values travel apart from the
// SQL text, so nothing a client sends is ever parsed as SQL); values and results
// go as text. Errors come back as values, never exceptions:
//   unique_violation (SQLSTATE 23505)      -> kInvalid
//   foreign_key_violation (SQLSTATE 23503) -> kNotFound
//   the database unreachable, a lost connection, SQLSTATE 08xxx and
//   57P01-57P03 (shutting down, not accepting connections yet)
//                                          -> kUnavailable (503 + Retry-After to clients)
//   anything else                          -> kIo
// each message "<operation>: <the server's message>".
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/cluster_store.h"
#include "util/status.h"

struct pg_conn;
struct pg_result;

namespace tessera::store::pg {

// The values of one statement, in $-order.
class PgParams {
 public:
  PgParams& Text(std::string_view value);
  PgParams& Int(int64_t value);
  PgParams& Real(double value);  // round-trips exactly (17 significant digits)
  PgParams& Bool(bool value);
  PgParams& Null();
  // A text[] literal: binds a list of any length as one value (`= ANY($n::text[])`).
  PgParams& TextArray(const std::vector<std::string>& values);

  size_t size() const { return values_.size(); }
  const std::vector<std::optional<std::string>>& values() const { return values_; }

 private:
  std::vector<std::optional<std::string>> values_;
};

// An owned result: rows of text values.
class PgResult {
 public:
  explicit PgResult(pg_result* result);
  int rows() const;
  std::string Text(int row, int column) const;
  int64_t Int(int row, int column) const;
  double Real(int row, int column) const;
  bool IsNull(int row, int column) const;
  // Rows an INSERT, UPDATE or DELETE touched.
  int64_t AffectedRows() const;

 private:
  struct Clear {
    void operator()(pg_result* result) const;
  };
  std::unique_ptr<pg_result, Clear> result_;
};

// One row of a result, read the way store_rows.h's readers read a row.
class PgRow {
 public:
  PgRow(const PgResult& result, int row) : result_(result), row_(row) {}
  std::string ColumnText(int column) const { return result_.Text(row_, column); }
  int64_t ColumnInt(int column) const { return result_.Int(row_, column); }
  double ColumnReal(int column) const { return result_.Real(row_, column); }
  bool ColumnIsNull(int column) const { return result_.IsNull(row_, column); }

 private:
  const PgResult& result_;
  int row_;
};

class PgConnection {
 public:
  // Connects with a libpq connection string or URI (postgresql://...), client
  // encoding UTF8. kIo with libpq's reason when it cannot.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one parameterised statement.
  Result<PgResult> Exec(std::string_view operation, const std::string& sql, const PgParams& params = {});
  // Runs a script of statements without parameters (a migration's SQL).
  Status ExecScript(std::string_view operation, const std::string& sql);

  // BEGIN, `body`, COMMIT; ROLLBACK when the body or the commit fails.
  template <typename Body>
  Status InTransaction(std::string_view operation, Body&& body) {
    if (Result<PgResult> begun = Exec(operation, "BEGIN"); !begun.ok()) return begun.status();
    Status result = body();
    if (result.ok()) {
      if (Result<PgResult> committed = Exec(operation, "COMMIT"); !committed.ok()) result = committed.status();
    }
    if (!result.ok()) Exec(operation, "ROLLBACK");
    return result;
  }

  // Whether the connection can be used again: open, and outside a transaction.
  bool Reusable() const;
  // Whether the connection is still open (as far as libpq has seen).
  bool Connected() const;

  // `identifier` quoted for splicing into SQL where no value can be bound
  // (LISTEN's channel): "..." with any '"' doubled, as libpq's escaping does.
  Result<std::string> QuoteIdentifier(std::string_view identifier);

  // The notifications of the channels this connection LISTENs to: those that
  // came with earlier statements' results, else the first to arrive within
  // `timeout` (with any that came together with it); empty when none did. kIo
  // when the connection is lost (Connected() is then false).
  Result<std::vector<Notification>> WaitForNotifications(std::chrono::milliseconds timeout);

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
};

// The values of a text[] read as text ("{a,\"b c\"}"), the inverse of
// PgParams::TextArray. kIo naming `operation` for anything else (NULL elements
// included: the store's arrays have none).
Result<std::vector<std::string>> ParseTextArray(std::string_view literal, std::string_view operation);

// A connection string or URI with any password replaced by "***", for logs and
// error messages.
std::string RedactConninfo(const std::string& conninfo);

}  // namespace tessera::store::pg
