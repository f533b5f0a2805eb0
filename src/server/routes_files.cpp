// GET /files/{filename} (Range, ETag, Last-Modified, cache headers), GET /videos,
// DELETE /videos (seed 001, sections 6 and 10).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "server/byte_ranges.h"
#include "server/query_params.h"
#include "server/server_state.h"
#include "util/log.h"

namespace tessera::server {
namespace {

using nlohmann::json;

std::string HttpDate(time_t seconds) {
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return text;
}

std::string ContentTypeFor(const std::string& name) {
  auto ends = [&](const char* suffix) {
    std::string s(suffix);
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".mp4")) return "video/mp4";
  if (ends(".png")) return "image/png";
  if (ends(".jpg") || ends(".jpeg")) return "image/jpeg";
  if (ends(".webp")) return "image/webp";
  if (ends(".log")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// In a cluster without a shared results directory, a result lives on the node
// that made it: the URL that node advertises, when it is another node.
std::string ResultNodeUrl(JobServer::State& state, const std::string& name) {
  if (!state.cluster_store) return "";
  store::JobFilter filter;
  filter.filename = name;
  filter.limit = 1;
  auto jobs = state.store->List(filter);
  if (!jobs.ok() || jobs->empty()) return "";
  const std::string node = jobs->front().node;
  if (node.empty() || node == state.config.node_id) return "";
  auto nodes = state.cluster_store->ListNodes();
  if (!nodes.ok()) return "";
  for (const store::NodeRecord& record : *nodes) {
    if (record.node_id == node) return record.advertise_url;
  }
  return "";
}

void ServeFile(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  std::string name = request.captures[0];
  if (!IsSafeFileName(name)) return ReplyError(response, 400, "invalid file name");
  struct stat info {};
  if (::lstat((state.config.ResultsDir() + "/" + name).c_str(), &info) != 0 && errno == ENOENT) {
    if (std::string url = ResultNodeUrl(state, name); !url.empty()) {
      // 307: the same method, and a client follows it to the node that has the file.
      response.status = 307;
      response.SetHeader("Location", url + "/files/" + name);
      response.content_type = "application/json";
      response.body = nlohmann::json{{"location", url + "/files/" + name}}.dump();
      return;
    }
  }
  ServeFileAt(state.config.ResultsDir(), name, request, response);
}

std::string ETagOf(const struct stat& info) {
  char etag[80];
  std::snprintf(etag, sizeof etag, "\"%llx-%llx\"", static_cast<unsigned long long>(info.st_size),
                static_cast<unsigned long long>(info.st_mtim.tv_sec * 1000000000ll + info.st_mtim.tv_nsec));
  return etag;
}

// The parts of a 206: one range as is, several as multipart/byteranges.
void AnswerRanges(const std::vector<ByteRange>& ranges, uint64_t size, const std::string& content_type,
                  FileBody& body, HttpResponse& response) {
  response.status = 206;
  std::string total = "/" + std::to_string(size);
  auto content_range = [&](const ByteRange& r) {
    return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.first + r.length - 1) + total;
  };
  if (ranges.size() == 1) {
    response.SetHeader("Content-Range", content_range(ranges[0]));
    response.content_type = content_type;
    body.segments.push_back({true, "", ranges[0].first, ranges[0].length});
    return;
  }
  const std::string boundary = "tessera-byteranges-7d1f0c";
  response.content_type = "multipart/byteranges; boundary=" + boundary;
  for (const ByteRange& r : ranges) {
    body.segments.push_back({false, "\r\n--" + boundary + "\r\nContent-Type: " + content_type +
                                        "\r\nContent-Range: " + content_range(r) + "\r\n\r\n", 0, 0});
    body.segments.push_back({true, "", r.first, r.length});
  }
  body.segments.push_back({false, "\r\n--" + boundary + "--\r\n", 0, 0});
}

}  // namespace

void ServeFileAt(const std::string& dir, const std::string& name, const HttpRequest& request,
                 HttpResponse& response) {
  // Opened under the folder's descriptor with O_NOFOLLOW: a symlink placed in
  // the folder is refused (ELOOP), never followed out of it.
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ReplyError(response, 404, "no file " + name);
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  ::close(dir_fd);
  if (fd < 0) return ReplyError(response, 404, "no file " + name);
  auto file = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) return ReplyError(response, 404, "no file " + name);
  uint64_t size = static_cast<uint64_t>(info.st_size);
  std::string etag = ETagOf(info);
  std::string last_modified = HttpDate(info.st_mtim.tv_sec);
  response.SetHeader("ETag", etag);
  response.SetHeader("Last-Modified", last_modified);
  response.SetHeader("Cache-Control", "public, max-age=3600");
  response.SetHeader("Accept-Ranges", "bytes");
  std::string if_none_match = request.Header("If-None-Match");
  bool not_modified = !if_none_match.empty() ? (if_none_match == etag || if_none_match == "*")
                                             : request.Header("If-Modified-Since") == last_modified;
  if (not_modified) {
    response.status = 304;
    return;
  }
  std::string content_type = ContentTypeFor(name);
  RangeRequest ranges = ParseRangeHeader(request.Header("Range"), size);
  // If-Range with another validator: the file changed, send it whole.
  if (std::string if_range = request.Header("If-Range"); !if_range.empty() && if_range != etag) {
    ranges.outcome = RangeOutcome::kWholeFile;
  }
  if (ranges.outcome == RangeOutcome::kUnsatisfiable || ranges.outcome == RangeOutcome::kTooManyRanges) {
    response.SetHeader("Content-Range", "bytes */" + std::to_string(size));
    return ReplyError(response, 416,
                      ranges.outcome == RangeOutcome::kTooManyRanges
                          ? "more than " + std::to_string(kMaxRanges) + " ranges in one request"
                          : "no range overlaps the file (" + std::to_string(size) + " bytes)");
  }
  FileBody body;
  body.fd = file;
  if (ranges.outcome == RangeOutcome::kSatisfiable) {
    AnswerRanges(ranges.ranges, size, content_type, body, response);
  } else {
    response.status = 200;
    response.content_type = content_type;
    if (size > 0) body.segments.push_back({true, "", 0, size});
  }
  response.file = std::move(body);
}

namespace {

struct ResultFile {
  std::string name;
  int64_t size = 0;
  int64_t modified_s = 0;
};

// Newest first, then by name: the order of GET /videos and of its cursor.
bool ListedBefore(const ResultFile& a, const ResultFile& b) {
  return a.modified_s != b.modified_s ? a.modified_s > b.modified_s : a.name < b.name;
}

// The result files in listing order after `after` (none: from the start), at
// most `limit` of them. Memory holds `limit` entries whatever the folder's
// size; symlinks and hidden work files are skipped.
std::vector<ResultFile> ListResultFiles(const std::string& dir, const std::optional<ResultFile>& after, size_t limit) {
  std::vector<ResultFile> kept;  // a heap: the last in listing order on top
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return kept;
  int dir_fd = ::dirfd(handle);
  while (dirent* entry = ::readdir(handle)) {
    std::string name = entry->d_name;
    if (!IsSafeFileName(name)) continue;  // hidden work files (.partial, temp files) stay hidden
    struct stat info {};
    if (::fstatat(dir_fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(info.st_mode)) continue;
    ResultFile file{name, static_cast<int64_t>(info.st_size), static_cast<int64_t>(info.st_mtim.tv_sec)};
    if (after && !ListedBefore(*after, file)) continue;
    if (kept.size() == limit) {
      if (!ListedBefore(file, kept.front())) continue;
      std::pop_heap(kept.begin(), kept.end(), ListedBefore);
      kept.back() = std::move(file);
    } else {
      kept.push_back(std::move(file));
    }
    std::push_heap(kept.begin(), kept.end(), ListedBefore);
  }
  ::closedir(handle);
  std::sort_heap(kept.begin(), kept.end(), ListedBefore);
  return kept;
}

std::string CursorOf(const ResultFile& file) { return std::to_string(file.modified_s) + ":" + file.name; }

Result<std::optional<ResultFile>> ParseCursor(const HttpRequest& request) {
  if (!request.HasParam("cursor")) return std::optional<ResultFile>();
  std::string cursor = request.Param("cursor");
  size_t colon = cursor.find(':');
  ResultFile after;
  char* end = nullptr;
  if (colon != std::string::npos) after.modified_s = std::strtoll(cursor.c_str(), &end, 10);
  if (colon == std::string::npos || end != cursor.c_str() + colon || !IsSafeFileName(cursor.substr(colon + 1))) {
    return InvalidError("query parameter cursor must be a next_cursor from an earlier answer");
  }
  after.name = cursor.substr(colon + 1);
  return std::optional<ResultFile>(after);
}

// GET /videos[?limit=N&cursor=C]: a page of result files, newest first, and the
// cursor of the next page (null on the last).
void ListVideos(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto limit = IntegerParam(request, "limit", 100, 1, 1000);
  if (!limit.ok()) return ReplyStatus(response, limit.status());
  auto after = ParseCursor(request);
  if (!after.ok()) return ReplyStatus(response, after.status());
  std::vector<ResultFile> files = ListResultFiles(state.config.ResultsDir(), *after, static_cast<size_t>(*limit) + 1);
  bool more = files.size() > static_cast<size_t>(*limit);
  if (more) files.pop_back();
  json list = json::array();
  for (const ResultFile& file : files) {
    json entry = {{"filename", file.name},
                  {"size_bytes", file.size},
                  {"modified_at", HttpDate(file.modified_s)},
                  {"file_url", state.config.host_base_url + "/files/" + file.name}};
    store::JobFilter filter;
    filter.filename = file.name;
    filter.newest_first = true;
    filter.limit = 1;
    auto owner = state.store->List(filter);
    entry["job_id"] = owner.ok() && !owner->empty() ? json(owner->front().id) : json(nullptr);
    list.push_back(entry);
  }
  ReplyJson(response, 200,
            json{{"videos", list}, {"next_cursor", more ? json(CursorOf(files.back())) : json(nullptr)}}.dump());
}

// DELETE /videos?filenames=a.mp4,b.mp4 | ids=... | all=true: deletes result files;
// the jobs' rows stay (their file_url then leads to 404).
void DeleteVideos(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto all_param = BoolParam(request, "all", false);
  if (!all_param.ok()) return ReplyStatus(response, all_param.status());
  bool all = *all_param;
  std::string filenames = request.Param("filenames");
  std::string ids = request.Param("ids");
  int selectors = (all ? 1 : 0) + (filenames.empty() ? 0 : 1) + (ids.empty() ? 0 : 1);
  if (selectors == 0) return ReplyError(response, 400, "say which files: filenames=..., ids=... or all=true");
  if (selectors > 1) return ReplyError(response, 400, "use one of filenames, ids and all, not several");
  std::vector<std::string> names;
  json not_found = json::array();
  if (all) {
    std::optional<ResultFile> after;
    while (true) {  // page by page: memory stays bounded on a large folder
      std::vector<ResultFile> page = ListResultFiles(state.config.ResultsDir(), after, 1000);
      for (const ResultFile& file : page) names.push_back(file.name);
      if (page.size() < 1000) break;
      after = page.back();
    }
  } else if (!filenames.empty()) {
    for (const std::string& name : SplitCsv(filenames)) {
      if (!IsSafeFileName(name)) return ReplyError(response, 400, "invalid file name " + name);
      names.push_back(name);
    }
  } else {
    store::JobFilter filter;
    filter.ids = SplitCsv(ids);
    auto jobs = state.store->List(filter);
    if (!jobs.ok()) return ReplyStatus(response, jobs.status());
    std::set<std::string> found;
    for (const store::Job& job : *jobs) {
      found.insert(job.id);
      if (!job.filename.empty()) names.push_back(job.filename);
    }
    for (const std::string& id : filter.ids) {
      if (!found.count(id)) not_found.push_back(id);
    }
  }
  json deleted = json::array();
  for (const std::string& name : names) {
    if (RemoveResultFile(state, name)) {
      deleted.push_back(name);
    } else if (!all) {
      not_found.push_back(name);
    }
  }
  LogInfo("videos_deleted").Field("deleted", deleted.size()).Field("client", request.remote_addr);
  ReplyJson(response, 200, json{{"deleted", deleted}, {"not_found", not_found}}.dump());
}

}  // namespace

void RegisterFileRoutes(JobServer::State& state) {
  state.router.Add("GET", "/files/{}", [&state](const HttpRequest& q, HttpResponse& r) { ServeFile(state, q, r); });
  state.router.Add("GET", "/videos", [&state](const HttpRequest& q, HttpResponse& r) { ListVideos(state, q, r); });
  state.router.Add("DELETE", "/videos", [&state](const HttpRequest& q, HttpResponse& r) { DeleteVideos(state, q, r); });
}

}  // namespace tessera::server
