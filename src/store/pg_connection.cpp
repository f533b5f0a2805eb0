#include "store/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>

namespace tessera::store::pg {

PgParams& PgParams::Text(std::string_view value) {
  values_.emplace_back(std::string(value));
  return *this;
}

PgParams& PgParams::Int(int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

PgParams& PgParams::Real(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  values_.emplace_back(text);
  return *this;
}

PgParams& PgParams::Bool(bool value) {
  values_.emplace_back(value ? "true" : "false");
  return *this;
}

PgParams& PgParams::Null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

PgParams& PgParams::TextArray(const std::vector<std::string>& values) {
  // Every element double-quoted, with '"' and '\' escaped: any text (commas,
  // braces, spaces, the word NULL) reads back as itself.
  std::string literal = "{";
  for (const std::string& value : values) {
    if (literal.size() > 1) literal.push_back(',');
    literal.push_back('"');
    for (char c : value) {
      if (c == '"' || c == '\\') literal.push_back('\\');
      literal.push_back(c);
    }
    literal.push_back('"');
  }
  literal.push_back('}');
  values_.emplace_back(std::move(literal));
  return *this;
}

void PgResult::Clear::operator()(pg_result* result) const { PQclear(result); }

PgResult::PgResult(pg_result* result) : result_(result) {}

int PgResult::rows() const { return PQntuples(result_.get()); }

std::string PgResult::Text(int row, int column) const {
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}

int64_t PgResult::Int(int row, int column) const {
  return std::strtoll(PQgetvalue(result_.get(), row, column), nullptr, 10);
}

double PgResult::Real(int row, int column) const {
  return std::strtod(PQgetvalue(result_.get(), row, column), nullptr);
}

bool PgResult::IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }

int64_t PgResult::AffectedRows() const {
  const char* text = PQcmdTuples(result_.get());
  return text[0] == '\0' ? 0 : std::strtoll(text, nullptr, 10);
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return IoError("connect to PostgreSQL: out of memory");
  // Owned from here on, closed on every return.
  std::unique_ptr<PgConnection> connection(new PgConnection(conn));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string reason = PQerrorMessage(conn);
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    return Status(StatusCode::kUnavailable, "connect to PostgreSQL at " + RedactConninfo(conninfo) + ": " + reason);
  }
  // The server's notices ("relation already exists, skipping", "drop cascades
  // to...") would go to stderr unasked; the store reports what matters itself.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  if (PQsetClientEncoding(conn, "UTF8") != 0) {
    return IoError("connect to PostgreSQL at " + RedactConninfo(conninfo) + ": cannot use UTF8");
  }
  return connection;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

namespace {

// "<operation>: <message> (SQLSTATE xxxxx)" with the code the SQLSTATE maps to.
Status ErrorOf(std::string_view operation, PGconn* conn, PGresult* result) {
  std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  StatusCode code = StatusCode::kIo;
  std::string text = std::string(operation) + ": " + message;
  if (state != nullptr) {
    if (std::strcmp(state, "23505") == 0) code = StatusCode::kInvalid;
    if (std::strcmp(state, "23503") == 0) code = StatusCode::kNotFound;
    // Class 08 (connection exception) and 57P01-57P03 (the server shutting
    // down, crashed, or not accepting connections yet): the database is away.
    if (std::strncmp(state, "08", 2) == 0 || std::strncmp(state, "57P0", 4) == 0) code = StatusCode::kUnavailable;
    text += std::string(" (SQLSTATE ") + state + ")";
  }
  if (PQstatus(conn) == CONNECTION_BAD) {
    code = StatusCode::kUnavailable;
    text += " (connection lost)";
  }
  return Status(code, text);
}

}  // namespace

Result<PgResult> PgConnection::Exec(std::string_view operation, const std::string& sql, const PgParams& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::optional<std::string>& value : params.values()) values.push_back(value ? value->c_str() : nullptr);
  PGresult* raw = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                               nullptr, 0);
  PgResult result(raw);
  ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return ErrorOf(operation, conn_, raw);
  return result;
}

Status PgConnection::ExecScript(std::string_view operation, const std::string& sql) {
  PGresult* raw = PQexec(conn_, sql.c_str());
  PgResult result(raw);
  ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return ErrorOf(operation, conn_, raw);
  return Status::Ok();
}

bool PgConnection::Reusable() const {
  return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

bool PgConnection::Connected() const { return PQstatus(conn_) == CONNECTION_OK; }

Result<std::string> PgConnection::QuoteIdentifier(std::string_view identifier) {
  char* quoted = PQescapeIdentifier(conn_, identifier.data(), identifier.size());
  if (quoted == nullptr) return ErrorOf("quote identifier " + std::string(identifier), conn_, nullptr);
  std::string text = quoted;
  PQfreemem(quoted);
  return text;
}

Result<std::vector<Notification>> PgConnection::WaitForNotifications(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + timeout;
  std::vector<Notification> received;
  while (true) {
    // Reads whatever the server sent without blocking; a closed socket (the
    // server ended the backend, or the network dropped) shows here.
    if (PQconsumeInput(conn_) == 0) return ErrorOf("wait for notifications", conn_, nullptr);
    while (PGnotify* notify = PQnotifies(conn_)) {
      received.push_back({notify->relname, notify->extra != nullptr ? notify->extra : ""});
      PQfreemem(notify);
    }
    if (!received.empty()) return received;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return received;
    pollfd socket{PQsocket(conn_), POLLIN, 0};
    if (socket.fd < 0) return ErrorOf("wait for notifications", conn_, nullptr);
    if (::poll(&socket, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      return IoError(std::string("wait for notifications: poll: ") + std::strerror(errno));
    }
  }
}

Result<std::vector<std::string>> ParseTextArray(std::string_view literal, std::string_view operation) {
  auto malformed = [&] {
    return IoError(std::string(operation) + ": malformed text[] '" + std::string(literal) + "'");
  };
  if (literal.size() < 2 || literal.front() != '{' || literal.back() != '}') return malformed();
  std::vector<std::string> values;
  const std::string_view body = literal.substr(1, literal.size() - 2);
  size_t i = 0;
  while (i < body.size()) {
    std::string value;
    if (body[i] == '"') {
      // Quoted: up to the closing '"', with \x standing for x.
      for (++i; i < body.size() && body[i] != '"'; ++i) {
        if (body[i] == '\\' && ++i == body.size()) return malformed();
        value.push_back(body[i]);
      }
      if (i == body.size()) return malformed();
      ++i;
    } else {
      // Unquoted: as is, up to the next ','; PostgreSQL quotes anything else.
      const size_t end = std::min(body.find(',', i), body.size());
      value = std::string(body.substr(i, end - i));
      if (value.empty() || value == "NULL" || value.find_first_of("\"\\{}") != std::string::npos) return malformed();
      i = end;
    }
    values.push_back(std::move(value));
    if (i < body.size() && body[i++] != ',') return malformed();
    if (i == body.size() && body.back() == ',') return malformed();
  }
  return values;
}

std::string RedactConninfo(const std::string& conninfo) {
  // URI form: scheme://user:password@host...; key=value form: password=...;
  // and a password=... query parameter of a URI.
  static const std::regex uri_password(R"(^([a-z]+://[^:/@]*):[^@/]*@)");
  static const std::regex key_password(R"((^|[\s?&])password\s*=\s*('[^']*'|[^\s&]*))");
  std::string redacted = std::regex_replace(conninfo, uri_password, "$1:***@");
  return std::regex_replace(redacted, key_password, "$1password=***");
}

}  // namespace tessera::store::pg
