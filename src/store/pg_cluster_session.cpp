#include "store/pg_cluster_session.h"

#include "util/log.h"

namespace tessera::store::pg {

Result<std::unique_ptr<PgClusterSession>> PgClusterSession::Open(const std::string& conninfo,
                                                                 std::vector<std::string> channels) {
  std::unique_ptr<PgClusterSession> session(new PgClusterSession(conninfo, std::move(channels)));
  if (Status s = session->Connect(); !s.ok()) return s;
  return session;
}

Status PgClusterSession::Connect() {
  connection_.reset();
  holds_reaper_lock_ = false;
  const std::string operation = "open a cluster session on " + RedactConninfo(conninfo_);
  auto connected = PgConnection::Connect(conninfo_);
  if (!connected.ok()) return Status(connected.status().code(), operation + ": " + connected.status().message());
  std::unique_ptr<PgConnection> connection = std::move(connected).value();
  for (const std::string& channel : channels_) {
    // LISTEN takes an identifier, not a value: quoted, never bound.
    auto quoted = connection->QuoteIdentifier(channel);
    if (!quoted.ok()) return quoted.status();
    if (Status s = connection->ExecScript(operation + ": listen on " + channel, "LISTEN " + *quoted); !s.ok()) return s;
  }
  connection_ = std::move(connection);
  ++connections_;
  return Status::Ok();
}

Result<std::vector<Notification>> PgClusterSession::Wait(std::chrono::milliseconds timeout) {
  if (connection_ == nullptr || !connection_->Connected()) {
    if (Status s = Connect(); !s.ok()) return s;
    LogInfo("cluster_session_reconnected").Field("connections", connections_);
    return std::vector<Notification>{};
  }
  auto received = connection_->WaitForNotifications(timeout);
  if (received.ok()) return received;
  LogWarn("cluster_session_lost").Field("error", received.status().message());
  if (Status s = Connect(); !s.ok()) return s;
  LogInfo("cluster_session_reconnected").Field("connections", connections_);
  return std::vector<Notification>{};
}

Result<bool> PgClusterSession::HoldReaperLock() {
  if (connection_ == nullptr || !connection_->Connected()) {
    return Status(StatusCode::kUnavailable, "take the reaper lock: the cluster session's connection is lost (Wait reconnects)");
  }
  if (holds_reaper_lock_) return true;
  auto taken =
      connection_->Exec("take the reaper lock", "SELECT pg_try_advisory_lock($1)", PgParams().Int(kReaperLock));
  if (!taken.ok()) return taken.status();
  holds_reaper_lock_ = taken->Text(0, 0) == "t";
  return holds_reaper_lock_;
}

Status PgClusterSession::ReleaseReaperLock() {
  if (!holds_reaper_lock_) return Status::Ok();
  holds_reaper_lock_ = false;
  if (connection_ == nullptr || !connection_->Connected()) return Status::Ok();  // gone with the connection
  auto released =
      connection_->Exec("release the reaper lock", "SELECT pg_advisory_unlock($1)", PgParams().Int(kReaperLock));
  return released.ok() ? Status::Ok() : released.status();
}

}  // namespace tessera::store::pg
