// The image-batch path against the raw worker (issue 6 "Measure"): the same N
// small images through one keep-alive `tessera worker` over protocol v2, then as
// one batch upload to a real `tessera serve` (one CPU lane, so the same single
// worker does the work), timed from the start of the upload to the batch's
// settle webhook. Prints images/s for both and the batch path's overhead per
// image.
//
//   batch_bench [--images 500] [--side 48] [--model realesr-animevideov3-x2]
#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_images.h"
#include "imaging/vips_runtime.h"
#include "protocol/codec.h"
#include "util/subprocess.h"
#include "worker/worker_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A distinct noisy image per index, so no two requests are the same bytes.
std::vector<uint8_t> NoisePng(int side, int index) { return tessera::bench::NoisePng(side, 100.0 + index % 50); }

double RawWorkerSeconds(const std::vector<std::vector<uint8_t>>& images, const std::string& model) {
  auto worker = tessera::worker::WorkerProcess::Start(TESSERA_BINARY, {"--keep-alive"}, "/dev/null");
  if (!worker.ok()) {
    std::fprintf(stderr, "cannot start the worker: %s\n", worker.status().ToString().c_str());
    std::exit(1);
  }
  auto call = [&](uint64_t id, const std::vector<uint8_t>& image) {
    tessera::protocol::RequestFrameSpec spec;
    spec.request_id = id;
    spec.engine = static_cast<uint32_t>(tessera::protocol::Engine::kRealEsrgan);
    spec.quality = model;
    spec.images = {image};
    auto response = worker->Call(tessera::protocol::EncodeRequestFrame(spec));
    if (!response.ok() || response->status != 0) {
      std::fprintf(stderr, "worker request failed\n");
      std::exit(1);
    }
  };
  call(0, images[0]);  // loads the model: not part of the measurement
  auto start = Clock::now();
  for (size_t i = 0; i < images.size(); ++i) call(i + 1, images[i]);
  double seconds = SecondsSince(start);
  (void)worker->Finish();
  return seconds;
}

struct Server {
  std::unique_ptr<tessera::Subprocess> process;
  int port = 0;
};

Server StartServer(const std::string& data_dir) {
  std::filesystem::create_directories(data_dir);
  std::string fifo = data_dir + "/port.fifo";
  ::mkfifo(fifo.c_str(), 0600);
  tessera::SubprocessOptions options;
  options.argv = {TESSERA_BINARY, "serve", "--port", "0", "--port-file", fifo, "--data-dir", data_dir,
                  "--rate-limit-per-minute", "0", "--log-level", "warn"};
  options.pipe_stdin = false;
  options.pipe_stdout = false;
  options.stderr_path = data_dir + "/server.log";
  auto started = tessera::Subprocess::Start(options);
  if (!started.ok()) {
    std::fprintf(stderr, "cannot start the server: %s\n", started.status().ToString().c_str());
    std::exit(1);
  }
  Server server;
  server.process = std::make_unique<tessera::Subprocess>(std::move(started).value());
  int fd = ::open(fifo.c_str(), O_RDONLY);  // blocks until the server has bound its port
  char text[32] = {};
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  server.port = n > 0 ? std::atoi(text) : 0;
  if (server.port <= 0) {
    std::fprintf(stderr, "the server did not start; see %s/server.log\n", data_dir.c_str());
    std::exit(1);
  }
  return server;
}

double BatchSeconds(const std::vector<std::vector<uint8_t>>& images, const std::string& model,
                    const std::string& data_dir) {
  // The settle webhook ends the measurement.
  std::mutex mutex;
  std::condition_variable settled_cv;
  bool settled = false;
  std::string settled_body;
  httplib::Server hooks;
  hooks.Post("/settled", [&](const httplib::Request& request, httplib::Response& response) {
    {
      std::lock_guard lock(mutex);
      settled = true;
      settled_body = request.body;
    }
    settled_cv.notify_all();
    response.status = 200;
  });
  int hook_port = hooks.bind_to_any_port("127.0.0.1");
  std::thread hook_thread([&] { hooks.listen_after_bind(); });

  Server server = StartServer(data_dir);
  httplib::Client client("127.0.0.1", server.port);
  client.set_read_timeout(600, 0);
  // The lane's worker loads the model once before the batch, as the raw run did.
  auto warm = client.Post(("/upscale?wait=true&model=" + model).c_str(),
                          std::string(images[0].begin(), images[0].end()), "image/png");
  if (!warm || warm->status != 200) {
    std::fprintf(stderr, "warm-up upscale failed\n");
    std::exit(1);
  }
  httplib::MultipartFormDataItems items;
  for (size_t i = 0; i < images.size(); ++i) {
    items.push_back({"images", std::string(images[i].begin(), images[i].end()), "img" + std::to_string(i) + ".png",
                     "image/png"});
  }
  items.push_back({"model", model, "", ""});
  items.push_back({"webhook", "http://127.0.0.1:" + std::to_string(hook_port) + "/settled", "", ""});

  auto start = Clock::now();
  auto uploaded = client.Post("/images/games/bench/batch-upload", items);
  if (!uploaded || uploaded->status != 202) {
    std::fprintf(stderr, "batch upload failed: %s\n", uploaded ? uploaded->body.c_str() : "no answer");
    std::exit(1);
  }
  double upload_seconds = SecondsSince(start);
  {
    std::unique_lock lock(mutex);
    settled_cv.wait(lock, [&] { return settled; });
  }
  double seconds = SecondsSince(start);
  json status = json::parse(settled_body, nullptr, false);
  std::printf("batch: upload answered after %.3f s; settled %s, %s\n", upload_seconds,
              status.value("status", "?").c_str(), status.value("progress", "?").c_str());
  server.process->Signal(SIGTERM);
  (void)server.process->Wait();
  hooks.stop();
  hook_thread.join();
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int count = 500;
  int side = 48;
  std::string model = "realesr-animevideov3-x2";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--images") count = std::atoi(argv[i + 1]);
    if (flag == "--side") side = std::atoi(argv[i + 1]);
    if (flag == "--model") model = argv[i + 1];
  }
  tessera::imaging::InitImaging({});
  std::vector<std::vector<uint8_t>> images;
  for (int i = 0; i < count; ++i) images.push_back(NoisePng(side, i));

  char dir_template[] = "/tmp/tessera-batch-bench-XXXXXX";
  std::string data_dir = std::string(::mkdtemp(dir_template)) + "/data";

  double raw = RawWorkerSeconds(images, model);
  double batch = BatchSeconds(images, model, data_dir);
  std::error_code ignored;
  std::filesystem::remove_all(std::filesystem::path(data_dir).parent_path(), ignored);

  std::printf("\n%d images of %dx%d, model %s, one CPU lane\n", count, side, side, model.c_str());
  std::printf("| path | seconds | images/s | ms per image |\n|---|---|---|---|\n");
  std::printf("| raw keep-alive worker (one request per image) | %.2f | %.1f | %.2f |\n", raw, count / raw,
              raw * 1000 / count);
  std::printf("| batch upload to settle webhook | %.2f | %.1f | %.2f |\n", batch, count / batch,
              batch * 1000 / count);
  std::printf("overhead of the batch path: %.2f ms per image (%.1f %%)\n", (batch - raw) * 1000 / count,
              (batch - raw) / raw * 100);
  return 0;
}
