// Following a job through GET /events?job_id= in tests: the stream starts with
// the job's current state and ends once it finished, so waiting on it is waiting
// on the server's own events, never on a clock.
#pragma once

#include <httplib.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace tessera::test {

// Reads events of job `id` until `until(event)` holds or the stream ends; returns
// the last event seen (null when none).
inline nlohmann::json FollowJob(httplib::Client& client, const std::string& id,
                                const std::function<bool(const nlohmann::json&)>& until) {
  std::string buffer;
  nlohmann::json last;
  client.Get(("/events?job_id=" + id).c_str(), [&](const char* data, size_t size) {
    buffer.append(data, size);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string frame = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      size_t at = frame.find("data: ");
      if (at == std::string::npos) continue;
      last = nlohmann::json::parse(frame.substr(at + 6), nullptr, false);
      if (last.is_object() && until(last)) return false;
    }
    return true;
  });
  return last;
}

inline bool IsFinished(const nlohmann::json& event) {
  std::string status = event.value("status", "");
  return status == "success" || status == "error" || status == "canceled";
}

// Waits for the job to finish; returns its final event.
inline nlohmann::json WaitFinished(httplib::Client& client, const std::string& id) {
  return FollowJob(client, id, IsFinished);
}

// Waits until the job runs (or already ended); returns that event.
inline nlohmann::json WaitRunning(httplib::Client& client, const std::string& id) {
  return FollowJob(client, id, [](const nlohmann::json& e) { return e.value("status", "") != "queued"; });
}

// Waits until the running job has reported progress of its own (tier A or B):
// its command is then up and printing.
inline nlohmann::json WaitReportedProgress(httplib::Client& client, const std::string& id) {
  return FollowJob(client, id, [](const nlohmann::json& e) {
    std::string source = e.value("eta_source", "");
    return source == "heuristic" || source == "structured" || IsFinished(e);
  });
}

}  // namespace tessera::test
