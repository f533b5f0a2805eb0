#include "jobs/command_progress.h"

#include <memory>
#include <optional>

#include "jobs/progress_parser.h"
#include "jobs/watchdog.h"

namespace tessera::jobs {

OutputCallback ReportCommandProgress(std::function<void(const ProgressReport&)> report) {
  struct Seen {
    ProgressTracker tracker;
    std::optional<ProgressEvent> reported;
  };
  auto seen = std::make_shared<Seen>();
  return [seen, report = std::move(report)](std::string_view chunk) {
    seen->tracker.Feed(chunk);
    const std::optional<ProgressEvent>& latest = seen->tracker.latest();
    if (!latest || latest == seen->reported) return;
    seen->reported = latest;
    report(ProgressReport{ProgressFraction(*latest), latest->step, latest->total,
                          latest->source == ProgressEvent::Source::kStructured});
  };
}

CommandWait WaitForCommand(RunningCommand& command, CancelSignal& cancel, std::chrono::milliseconds timeout,
                           std::chrono::milliseconds grace) {
  RunningCommand* running = &command;
  cancel.OnCancel([running, grace] { running->Cancel(grace); });
  Watchdog watchdog(timeout, [running, grace] { running->Cancel(grace); });
  CommandWait wait;
  wait.outcome = command.Wait();
  watchdog.Disarm();
  cancel.ClearAction();
  wait.canceled = cancel.requested();
  wait.timed_out = watchdog.fired();
  return wait;
}

}  // namespace tessera::jobs
