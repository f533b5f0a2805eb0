// GET /files/{filename} (Range, ETag, Last-Modified, cache headers), GET /videos,
// DELETE /videos (seed 001, sections 6 and 10).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

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

void ServeFile(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  std::string name = request.matches[1];
  if (!IsSafeFileName(name)) return ReplyError(response, 400, "invalid file name");
  ServeFileAt(state.config.ResultsDir() + "/" + name, name, request, response);
}

}  // namespace

void ServeFileAt(const std::string& path, const std::string& name, const httplib::Request& request,
                 httplib::Response& response) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ReplyError(response, 404, "no file " + name);
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return ReplyError(response, 404, "no file " + name);
  }
  char etag[80];
  std::snprintf(etag, sizeof etag, "\"%llx-%llx\"", static_cast<unsigned long long>(info.st_size),
                static_cast<unsigned long long>(info.st_mtim.tv_sec * 1000000000ll + info.st_mtim.tv_nsec));
  std::string last_modified = HttpDate(info.st_mtim.tv_sec);
  response.set_header("ETag", etag);
  response.set_header("Last-Modified", last_modified);
  response.set_header("Cache-Control", "public, max-age=3600");
  response.set_header("Accept-Ranges", "bytes");
  std::string if_none_match = request.get_header_value("If-None-Match");
  bool not_modified = !if_none_match.empty() ? (if_none_match == etag || if_none_match == "*")
                                             : request.get_header_value("If-Modified-Since") == last_modified;
  if (not_modified) {
    ::close(fd);
    response.status = 304;
    return;
  }
  // httplib 0.11 trusts a Range's first byte; one at or past the end must get
  // 416, not a 206 with a wrapped-around length.
  std::string range = request.get_header_value("Range");
  if (range.rfind("bytes=", 0) == 0 && range.size() > 6 && range[6] != '-') {
    unsigned long long first = std::strtoull(range.c_str() + 6, nullptr, 10);
    if (first >= static_cast<unsigned long long>(info.st_size)) {
      ::close(fd);
      response.set_header("Content-Range", "bytes */" + std::to_string(info.st_size));
      return ReplyError(response, 416, "the range starts at or past the end of the file (" +
                                           std::to_string(info.st_size) + " bytes)");
    }
  }
  // The file is read as the client takes it (httplib answers Range requests
  // from the provider); the descriptor is shared by the provider and closed with it.
  auto file = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  response.set_content_provider(
      static_cast<size_t>(info.st_size), ContentTypeFor(name),
      [file](size_t offset, size_t length, httplib::DataSink& sink) {
        char buffer[64 * 1024];
        size_t wanted = std::min(length, sizeof buffer);
        ssize_t n = ::pread(*file, buffer, wanted, static_cast<off_t>(offset));
        if (n <= 0) return false;
        return sink.write(buffer, static_cast<size_t>(n));
      });
}

namespace {

struct ResultFile {
  std::string name;
  int64_t size = 0;
  int64_t modified_s = 0;
};

std::vector<ResultFile> ListResultFiles(const std::string& dir) {
  std::vector<ResultFile> files;
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return files;
  while (dirent* entry = ::readdir(handle)) {
    std::string name = entry->d_name;
    if (!IsSafeFileName(name)) continue;  // hidden work files (.partial, temp files) stay hidden
    struct stat info {};
    if (::stat((dir + "/" + name).c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    files.push_back({name, static_cast<int64_t>(info.st_size), static_cast<int64_t>(info.st_mtim.tv_sec)});
  }
  ::closedir(handle);
  std::sort(files.begin(), files.end(), [](const ResultFile& a, const ResultFile& b) {
    return a.modified_s != b.modified_s ? a.modified_s > b.modified_s : a.name < b.name;
  });
  return files;
}

void ListVideos(JobServer::State& state, const httplib::Request&, httplib::Response& response) {
  json list = json::array();
  for (const ResultFile& file : ListResultFiles(state.config.ResultsDir())) {
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
  ReplyJson(response, 200, json{{"videos", list}}.dump());
}

// DELETE /videos?filenames=a.mp4,b.mp4 | ids=... | all=true: deletes result files;
// the jobs' rows stay (their file_url then leads to 404).
void DeleteVideos(JobServer::State& state, const httplib::Request& request, httplib::Response& response) {
  bool all = request.get_param_value("all") == "true";
  std::string filenames = request.get_param_value("filenames");
  std::string ids = request.get_param_value("ids");
  int selectors = (all ? 1 : 0) + (filenames.empty() ? 0 : 1) + (ids.empty() ? 0 : 1);
  if (selectors == 0) return ReplyError(response, 400, "say which files: filenames=..., ids=... or all=true");
  if (selectors > 1) return ReplyError(response, 400, "use one of filenames, ids and all, not several");
  std::vector<std::string> names;
  json not_found = json::array();
  if (all) {
    for (const ResultFile& file : ListResultFiles(state.config.ResultsDir())) names.push_back(file.name);
  } else if (!filenames.empty()) {
    for (const std::string& name : SplitCsv(filenames)) {
      if (!IsSafeFileName(name)) return ReplyError(response, 400, "invalid file name " + name);
      names.push_back(name);
    }
  } else {
    store::JobFilter filter;
    filter.ids = SplitCsv(ids);
    auto jobs = state.store->List(filter);
    if (!jobs.ok()) return ReplyError(response, 500, jobs.status().message());
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
  state.http.Get(R"(/files/([^/]+))", [&state](const httplib::Request& q, httplib::Response& r) { ServeFile(state, q, r); });
  state.http.Get("/videos", [&state](const httplib::Request& q, httplib::Response& r) { ListVideos(state, q, r); });
  state.http.Delete("/videos", [&state](const httplib::Request& q, httplib::Response& r) { DeleteVideos(state, q, r); });
}

}  // namespace tessera::server
