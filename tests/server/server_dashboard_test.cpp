// The dashboard's page and the routes it reads (issue 17), against a real
// `tessera serve`: the embedded page with its ETag, the session cookie and its
// CSRF header, search, retry, log tail, input, models, counts and batch lists.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include "../support/job_events.h"
#include "../support/server_process.h"
#include "../support/webhook_receiver.h"

namespace tessera::test {
namespace {

using nlohmann::json;

std::string Submit(httplib::Client& client, const std::string& prompt) {
  auto accepted = client.Post("/generate", json{{"prompt", prompt}, {"size", "1280x720"}}.dump(), "application/json");
  EXPECT_TRUE(accepted);
  if (!accepted) return "";
  EXPECT_EQ(accepted->status, 202) << accepted->body;
  return json::parse(accepted->body)["id"];
}

TEST(ServerDashboard, ThePageIsServedFromTheBinaryWithAnETag) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto page = client->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"/ui/app.js\""), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  std::string etag = page->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  auto again = client->Get("/", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  auto listed = client->Get("/", {{"If-None-Match", "\"older\", W/" + etag}});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 304);
  auto other = client->Get("/", {{"If-None-Match", "\"something-else\""}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);

  auto script = client->Get("/ui/app.js");
  ASSERT_TRUE(script);
  EXPECT_EQ(script->status, 200);
  EXPECT_EQ(script->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_NE(script->body.find("new EventSource("), std::string::npos);
  EXPECT_NE(script->get_header_value("ETag"), etag);
  auto styles = client->Get("/ui/app.css");
  ASSERT_TRUE(styles);
  EXPECT_EQ(styles->get_header_value("Content-Type"), "text/css; charset=utf-8");
  for (const char* missing : {"/ui/nothing.js", "/ui/..%2fapp.js", "/ui/index.html"}) {
    auto refused = client->Get(missing);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 404) << missing;
  }
}

TEST(ServerDashboard, ATokenBuysAnHttpOnlyCookieAndChangesNeedTheCsrfHeader) {
  TempDir dir;
  const std::string token = "s3cret-token-for-the-dashboard";
  ServerProcess server({dir.path() + "/data", {"--token", token}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  // The page loads without the token; the data does not.
  auto page = client->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto anonymous = client->Get("/jobs");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  auto before = client->Get("/session");
  ASSERT_TRUE(before);
  EXPECT_EQ(json::parse(before->body), (json{{"auth_required", true}, {"authenticated", false}, {"csrf", nullptr}}));

  auto wrong = client->Post("/session", json{{"token", "guess"}}.dump(), "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_FALSE(wrong->has_header("Set-Cookie"));

  auto opened = client->Post("/session", json{{"token", token}}.dump(), "application/json");
  ASSERT_TRUE(opened);
  ASSERT_EQ(opened->status, 200) << opened->body;
  std::string set_cookie = opened->get_header_value("Set-Cookie");
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos) << set_cookie;
  EXPECT_EQ(set_cookie.find(token), std::string::npos) << "the token itself must not be the cookie";
  std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  std::string csrf = json::parse(opened->body)["csrf"];
  ASSERT_FALSE(csrf.empty());

  auto listed = client->Get("/jobs", {{"Cookie", "theme=dark; " + cookie}});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
  auto session = client->Get("/session", {{"Cookie", cookie}});
  ASSERT_TRUE(session);
  EXPECT_EQ(json::parse(session->body)["csrf"], csrf);

  std::string body = json{{"prompt", "from the page"}, {"size", "1280x720"}}.dump();
  auto no_csrf = client->Post("/generate", {{"Cookie", cookie}}, body, "application/json");
  ASSERT_TRUE(no_csrf);
  EXPECT_EQ(no_csrf->status, 403) << no_csrf->body;
  auto bad_csrf = client->Post("/generate", {{"Cookie", cookie}, {"X-Tessera-CSRF", csrf.substr(1) + "0"}}, body,
                               "application/json");
  ASSERT_TRUE(bad_csrf);
  EXPECT_EQ(bad_csrf->status, 403);
  auto with_csrf = client->Post("/generate", {{"Cookie", cookie}, {"X-Tessera-CSRF", csrf}}, body, "application/json");
  ASSERT_TRUE(with_csrf);
  EXPECT_EQ(with_csrf->status, 202) << with_csrf->body;

  // A cookie changed anywhere is no session.
  std::string forged = cookie;
  forged[forged.find(".") + 1] = forged[forged.find(".") + 1] == '9' ? '8' : '9';  // another expiry
  auto refused = client->Get("/jobs", {{"Cookie", forged}});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);

  // API clients keep the bearer token, with no CSRF header.
  httplib::Headers bearer = {{"Authorization", "Bearer " + token}};
  auto api = client->Post("/generate", bearer, json{{"prompt", "api"}, {"size", "1280x720"}}.dump(), "application/json");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 202);

  auto closed = client->Delete("/session");
  ASSERT_TRUE(closed);
  EXPECT_NE(closed->get_header_value("Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(server.stderr_text().find(token), std::string::npos) << "the token must never be logged";
}

TEST(ServerDashboard, JobsAreSearchableAndListedInQueueOrder) {
  TempDir dir;
  std::string block = dir.path() + "/release";
  ServerProcess server({dir.path() + "/data", {}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::string cat = Submit(*client, "A Cat on a 100% red_roof");
  std::string dog = Submit(*client, "a dog");
  std::string other_cat = Submit(*client, "another cat");
  auto ids = [&](const std::string& path) {
    auto answer = client->Get(path.c_str());
    std::vector<std::string> found;
    EXPECT_TRUE(answer);
    if (!answer) return found;
    EXPECT_EQ(answer->status, 200) << path << answer->body;
    json page = json::parse(answer->body);
    for (const json& job : page["jobs"]) found.push_back(job["id"]);
    return found;
  };
  EXPECT_EQ(ids("/jobs?q=CAT"), (std::vector<std::string>{other_cat, cat}));
  EXPECT_EQ(ids("/jobs?q=100%25%20red_"), (std::vector<std::string>{cat}));  // '%' and '_' are plain text
  EXPECT_EQ(ids("/jobs?q=_roof&kind=upscale"), (std::vector<std::string>{}));
  EXPECT_EQ(ids("/jobs?q=" + dog.substr(0, 8)), (std::vector<std::string>{dog}));
  EXPECT_EQ(ids("/jobs?order=oldest"), (std::vector<std::string>{cat, dog, other_cat}));
  EXPECT_EQ(ids("/jobs?order=oldest&limit=1&cursor=" + std::to_string(1)), (std::vector<std::string>{dog}));
  auto bad = client->Get("/jobs?order=sideways");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  auto counts = client->Get("/jobs/counts");
  ASSERT_TRUE(counts);
  json c = json::parse(counts->body);
  EXPECT_EQ(c["total"], 3);
  EXPECT_EQ(c["running"].get<int>() + c["queued"].get<int>(), 3);
  std::ofstream(block) << "go";
}

TEST(ServerDashboard, AFailedJobIsRetriedAsANewJobAndItsLogTailIsRead) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {{"FAKE_GENERATE_FAIL", "1"}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::string id = Submit(*client, "fails twice");
  json failed = WaitFinished(*client, id);
  ASSERT_EQ(failed["status"], "error") << failed.dump();

  auto log = client->Get(("/jobs/" + id + "/log").c_str());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->status, 200);
  EXPECT_EQ(log->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_NE(log->body.find("received prompt: fails twice"), std::string::npos) << log->body;
  EXPECT_NE(log->body.find("fake generator failure"), std::string::npos) << log->body;
  auto tail = client->Get(("/jobs/" + id + "/log?tail_kb=1").c_str());
  ASSERT_TRUE(tail);
  EXPECT_LE(tail->body.size(), 1024u);
  for (const char* bad : {"?tail_kb=0", "?tail_kb=2000", "?tail_kb=x"}) {
    auto refused = client->Get(("/jobs/" + id + "/log" + bad).c_str());
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400) << bad;
  }
  auto unknown = client->Get("/jobs/no-such-job/log");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);

  auto retried = client->Post(("/jobs/" + id + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(retried);
  ASSERT_EQ(retried->status, 202) << retried->body;
  json again = json::parse(retried->body);
  EXPECT_NE(again["id"], id);
  EXPECT_EQ(again["retry_of"], id);
  EXPECT_EQ(again["prompt"], "fails twice");
  EXPECT_EQ(again["params"]["size"], "1280x720");
  EXPECT_EQ(WaitFinished(*client, again["id"])["status"], "error");
  auto original = client->Get(("/status/" + id).c_str());
  ASSERT_TRUE(original);
  EXPECT_EQ(json::parse(original->body)["status"], "error") << "the failed job stays as it was";
  auto missing = client->Post("/jobs/no-such-job/retry", "", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(ServerDashboard, OnlyFailedOrCanceledJobsAreRetried) {
  TempDir dir;
  std::string block = dir.path() + "/release";
  ServerProcess server({dir.path() + "/data", {}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::string running = Submit(*client, "still running");
  WaitRunning(*client, running);
  auto refused = client->Post(("/jobs/" + running + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  auto canceled = client->Delete(("/jobs?ids=" + running).c_str());
  ASSERT_TRUE(canceled);
  EXPECT_EQ(WaitFinished(*client, running)["status"], "canceled");
  std::ofstream(block) << "go";
  auto retried = client->Post(("/jobs/" + running + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(retried);
  ASSERT_EQ(retried->status, 202) << retried->body;
  EXPECT_EQ(WaitFinished(*client, json::parse(retried->body)["id"])["status"], "success");
}

TEST(ServerDashboard, AnUpscaleShowsItsOriginalAndIsRetriedFromItsStoredInput) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::vector<uint8_t> png = SolidPng(8, 6, {10, 200, 30});
  std::string image(png.begin(), png.end());
  auto accepted = client->Post("/upscale?model=lanczos&scale=2", image, "image/png");
  ASSERT_TRUE(accepted);
  ASSERT_EQ(accepted->status, 202) << accepted->body;
  std::string id = json::parse(accepted->body)["id"];
  auto input = client->Get(("/jobs/" + id + "/input").c_str());
  ASSERT_TRUE(input);
  EXPECT_EQ(input->status, 200);
  EXPECT_EQ(input->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(input->body, image);
  ASSERT_EQ(WaitFinished(*client, id)["status"], "success");
  // A success is not retried; the input of a generate job does not exist.
  auto refused = client->Post(("/jobs/" + id + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409);
  std::string video = Submit(*client, "no input");
  auto none = client->Get(("/jobs/" + video + "/input").c_str());
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);

  // A failed upscale runs again from the same stored bytes, which outlive the first job.
  std::string broken = std::string("\x89PNG\r\n\x1a\n", 8) + "damaged after the signature";
  auto failing = client->Post("/upscale?model=lanczos&scale=2", broken, "image/png");
  ASSERT_TRUE(failing);
  ASSERT_EQ(failing->status, 202);
  std::string failed = json::parse(failing->body)["id"];
  ASSERT_EQ(WaitFinished(*client, failed)["status"], "error");
  auto retried = client->Post(("/jobs/" + failed + "/retry").c_str(), "", "application/json");
  ASSERT_TRUE(retried);
  ASSERT_EQ(retried->status, 202) << retried->body;
  std::string again = json::parse(retried->body)["id"];
  auto removed = client->Delete(("/jobs?ids=" + failed + "&delete_files=true").c_str());
  ASSERT_TRUE(removed);
  ASSERT_EQ(removed->status, 200);
  auto kept = client->Get(("/jobs/" + again + "/input").c_str());
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->status, 200);
  EXPECT_EQ(kept->body, broken);
  EXPECT_EQ(WaitFinished(*client, again)["status"], "error");
}

TEST(ServerDashboard, ThumbnailsAreMadeOnceInAChildProcessAndCached) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::vector<uint8_t> png = GradientPng(600, 300, 3, 8);
  auto accepted = client->Post("/upscale?model=lanczos&scale=2", std::string(png.begin(), png.end()), "image/png");
  ASSERT_TRUE(accepted);
  ASSERT_EQ(accepted->status, 202) << accepted->body;
  std::string id = json::parse(accepted->body)["id"];
  ASSERT_EQ(WaitFinished(*client, id)["status"], "success");

  auto result = client->Get(("/jobs/" + id + "/thumbnail").c_str());
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_EQ(result->get_header_value("Content-Type"), "image/webp");
  DecodedPixels small = DecodePixels(std::vector<uint8_t>(result->body.begin(), result->body.end()));
  EXPECT_EQ(small.width, 256);  // 1200x600 -> 256x128
  EXPECT_EQ(small.height, 128);
  auto full = client->Get(("/jobs/" + id + "/result").c_str());
  ASSERT_TRUE(full);
  ASSERT_EQ(full->status, 200);
  EXPECT_EQ(DecodePixels(std::vector<uint8_t>(full->body.begin(), full->body.end())).width, 1200);
  auto input = client->Get(("/jobs/" + id + "/thumbnail?of=input").c_str());
  ASSERT_TRUE(input);
  ASSERT_EQ(input->status, 200);
  EXPECT_EQ(DecodePixels(std::vector<uint8_t>(input->body.begin(), input->body.end())).width, 256);

  // Made once: the cached file is what later requests get (same ETag, 304).
  std::string cached = server.data_dir() + "/thumbs/" + id + "-result.webp";
  ASSERT_TRUE(std::filesystem::exists(cached));
  auto mtime = std::filesystem::last_write_time(cached);
  auto again = client->Get(("/jobs/" + id + "/thumbnail").c_str(), {{"If-None-Match", result->get_header_value("ETag")}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_EQ(std::filesystem::last_write_time(cached), mtime);

  // Deleting the job removes its thumbnails.
  auto deleted = client->Delete(("/jobs?ids=" + id + "&delete_files=true").c_str());
  ASSERT_TRUE(deleted);
  EXPECT_FALSE(std::filesystem::exists(cached));
  auto gone = client->Get(("/jobs/" + id + "/thumbnail").c_str());
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
}

TEST(ServerDashboard, AnImageThatCannotBeReadGetsNoThumbnailAndTheServerGoesOn) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::string broken = std::string("\x89PNG\r\n\x1a\n", 8) + "garbage after a valid signature";
  auto accepted = client->Post("/upscale?model=lanczos&scale=2", broken, "image/png");
  ASSERT_TRUE(accepted);
  ASSERT_EQ(accepted->status, 202);
  std::string id = json::parse(accepted->body)["id"];
  auto refused = client->Get(("/jobs/" + id + "/thumbnail?of=input").c_str());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 415) << refused->body;
  EXPECT_NE(refused->body.find("no thumbnail"), std::string::npos);
  auto bad = client->Get(("/jobs/" + id + "/thumbnail?of=sideways").c_str());
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto health = client->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST(ServerDashboard, EveryWebhookAttemptIsKeptWithItsJob) {
  TempDir dir;
  WebhookReceiver hooks;
  ServerProcess server({dir.path() + "/data", {"--webhook-max-attempts", "1"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto submit = [&](const std::string& prompt, const std::string& webhook) {
    auto accepted = client->Post(
        "/generate", json{{"prompt", prompt}, {"size", "1280x720"}, {"webhook", webhook}}.dump(), "application/json");
    EXPECT_TRUE(accepted && accepted->status == 202);
    std::string id = json::parse(accepted->body)["id"];
    EXPECT_EQ(WaitFinished(*client, id)["status"], "success");
    return id;
  };
  // One thread delivers in order: when a later delivery arrives, the earlier
  // one's attempt has been recorded.
  std::string unreachable = submit("nobody listens", "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook");
  std::string reached = submit("heard", hooks.Url("/first"));
  ASSERT_TRUE(hooks.WaitForCalls(1));
  submit("heard too", hooks.Url("/second"));
  ASSERT_TRUE(hooks.WaitForCalls(2));

  auto failed = client->Get(("/jobs/" + unreachable + "/webhooks").c_str());
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->status, 200) << failed->body;
  json attempts = json::parse(failed->body)["attempts"];
  ASSERT_EQ(attempts.size(), 1u) << failed->body;
  EXPECT_EQ(attempts[0]["attempt"], 1);
  EXPECT_EQ(attempts[0]["delivered"], false);
  EXPECT_EQ(attempts[0]["final"], true);
  EXPECT_EQ(attempts[0]["event"], "job.success");
  EXPECT_FALSE(attempts[0]["error"].get<std::string>().empty());

  auto delivered = client->Get(("/jobs/" + reached + "/webhooks").c_str());
  ASSERT_TRUE(delivered);
  json ok = json::parse(delivered->body)["attempts"];
  ASSERT_EQ(ok.size(), 1u) << delivered->body;
  EXPECT_EQ(ok[0]["delivered"], true);
  EXPECT_TRUE(ok[0]["error"].is_null());
  EXPECT_EQ(ok[0]["url"], hooks.Url("/first"));
  EXPECT_EQ(ok[0]["delivery_id"], hooks.calls()[0].headers.find("X-Tessera-Delivery")->second);

  // Deleted with the job.
  auto removed = client->Delete(("/jobs?ids=" + reached).c_str());
  ASSERT_TRUE(removed);
  auto gone = client->Get(("/jobs/" + reached + "/webhooks").c_str());
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
}

TEST(ServerDashboard, ModelsCarryDescriptionsAndBatchesAreListedWithTheirCounts) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto models = client->Get("/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200);
  json catalog = json::parse(models->body);
  EXPECT_EQ(catalog["default"], "realesr-animevideov3-x2");
  bool lanczos = false;
  for (const json& model : catalog["models"]) {
    EXPECT_FALSE(model["description"].get<std::string>().empty()) << model.dump();
    lanczos = lanczos || model["name"] == "lanczos";
  }
  EXPECT_TRUE(lanczos);

  std::vector<std::string> batches;
  for (int b = 0; b < 3; ++b) {
    httplib::MultipartFormDataItems items;
    std::vector<uint8_t> png = SolidPng(4, 4, {1, 2, static_cast<uint8_t>(b)});
    items.push_back({"image", std::string(png.begin(), png.end()), "a.png", "image/png"});
    items.push_back({"model", "lanczos", "", ""});
    items.push_back({"scale", "2", "", ""});
    auto uploaded = client->Post(b == 2 ? "/images/games/other/batch-upload" : "/images/games/g/batch-upload", items);
    ASSERT_TRUE(uploaded);
    ASSERT_EQ(uploaded->status, 202) << uploaded->body;
    batches.push_back(json::parse(uploaded->body)["batch_id"]);
  }
  auto first = client->Get("/images/batches?limit=2");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  json page = json::parse(first->body);
  ASSERT_EQ(page["batches"].size(), 2u);
  EXPECT_EQ(page["batches"][0]["batch_id"], batches[2]);
  EXPECT_EQ(page["batches"][1]["batch_id"], batches[1]);
  EXPECT_EQ(page["batches"][0]["total_images"], 1);
  EXPECT_NE(page["batches"][0]["progress"].get<std::string>().find("/1 images processed"), std::string::npos);
  ASSERT_TRUE(page["next_cursor"].is_string());
  auto second = client->Get(("/images/batches?limit=2&cursor=" + page["next_cursor"].get<std::string>()).c_str());
  ASSERT_TRUE(second);
  json rest = json::parse(second->body);
  ASSERT_EQ(rest["batches"].size(), 1u);
  EXPECT_EQ(rest["batches"][0]["batch_id"], batches[0]);
  EXPECT_TRUE(rest["next_cursor"].is_null());
  auto game = client->Get("/images/batches?game_id=other");
  ASSERT_TRUE(game);
  EXPECT_EQ(json::parse(game->body)["batches"].size(), 1u);
  auto bad = client->Get("/images/batches?limit=0");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace tessera::test
