#include "server/server_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using Values = std::map<std::string, std::string>;

// A fresh directory per test for config files, removed afterwards.
class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "tessera-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
};

ServerConfig Load(const Values& flags, const Values& env, const std::string& path = "") {
  auto config = LoadServerConfig(flags, env, path);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : ServerConfig{};
}

// The error of a load that must fail, with every expected fragment in its message.
void ExpectRefused(const Values& flags, const Values& env, const std::string& path,
                   std::initializer_list<std::string> fragments) {
  auto config = LoadServerConfig(flags, env, path);
  ASSERT_FALSE(config.ok()) << "accepted";
  EXPECT_EQ(config.status().code(), StatusCode::kInvalid);
  for (const std::string& fragment : fragments) {
    EXPECT_NE(config.status().message().find(fragment), std::string::npos)
        << "\"" << fragment << "\" missing from: " << config.status().message();
  }
}

// --- defaults ---

TEST_F(ServerConfigTest, NothingGivenYieldsTheDocumentedDefaults) {
  ServerConfig config = Load({}, {});
  EXPECT_EQ(config.host, "127.0.0.1");
  EXPECT_EQ(config.port, 8080);
  EXPECT_EQ(config.data_dir, "data");
  EXPECT_EQ(config.gpu_ids, std::nullopt);
  EXPECT_EQ(config.cpu_lanes, 1);
  EXPECT_EQ(config.resize_mode, "pad");
  EXPECT_EQ(config.restart_policy, "requeue");
  EXPECT_EQ(config.max_attempts, 3);
  EXPECT_EQ(config.token, "");
  EXPECT_EQ(config.default_model, "realesr-animevideov3-x2");
  EXPECT_DOUBLE_EQ(config.rate_limit_per_minute, 600);
  EXPECT_DOUBLE_EQ(config.default_generate_seconds, 600);
  EXPECT_DOUBLE_EQ(config.default_upscale_seconds, 10);
  EXPECT_EQ(config.http_threads, 8);
}

TEST_F(ServerConfigTest, DirectoriesDeriveFromTheDataDir) {
  ServerConfig config = Load({}, {});
  EXPECT_EQ(config.ResultsDir(), "data/results");
  EXPECT_EQ(config.LogsDir(), "data/logs");
  EXPECT_EQ(config.DbPath(), "data/state.db");
  EXPECT_EQ(config.UploadsDir(), "data/uploads");

  config = Load({{"data_dir", "/srv/tessera/"}}, {});
  EXPECT_EQ(config.ResultsDir(), "/srv/tessera/results");  // no doubled slash
  EXPECT_EQ(config.LogsDir(), "/srv/tessera/logs");
  EXPECT_EQ(config.DbPath(), "/srv/tessera/state.db");
  EXPECT_EQ(config.UploadsDir(), "/srv/tessera/uploads");
}

TEST_F(ServerConfigTest, AnExplicitDirectoryOverridesTheDerivedOne) {
  ServerConfig config = Load({{"data_dir", "/srv/t"}, {"results_dir", "/mnt/videos"}},
                             {{"LOGS_DIR", "/var/log/t"}, {"TESSERA_DB", "/db/t.db"}});
  EXPECT_EQ(config.ResultsDir(), "/mnt/videos");
  EXPECT_EQ(config.LogsDir(), "/var/log/t");
  EXPECT_EQ(config.DbPath(), "/db/t.db");
  EXPECT_EQ(config.UploadsDir(), "/srv/t/uploads");  // still derived
}

// --- each source ---

TEST_F(ServerConfigTest, FlagsAreAppliedByKey) {
  ServerConfig config = Load({{"port", "9001"}, {"gpu_ids", "0,1"}, {"retention_days", "2.5"}, {"resize_mode", "scale"}},
                             {});
  EXPECT_EQ(config.port, 9001);
  EXPECT_EQ(config.gpu_ids, "0,1");
  EXPECT_DOUBLE_EQ(config.retention_days, 2.5);
  EXPECT_EQ(config.resize_mode, "scale");
}

TEST_F(ServerConfigTest, EnvironmentVariablesAreApplied) {
  ServerConfig config = Load({}, {{"TESSERA_PORT", "9002"},
                                  {"GPU_IDS", "1"},
                                  {"RESULTS_DIR", "/r"},
                                  {"TESSERA_RESTART_POLICY", "fail"},
                                  {"TESSERA_MAX_ATTEMPTS", "5"},
                                  {"UNRELATED", "ignored"}});
  EXPECT_EQ(config.port, 9002);
  EXPECT_EQ(config.gpu_ids, "1");
  EXPECT_EQ(config.results_dir, "/r");
  EXPECT_EQ(config.restart_policy, "fail");
  EXPECT_EQ(config.max_attempts, 5);
}

TEST_F(ServerConfigTest, AConfigFileAcceptsStringsAndNumbers) {
  std::string path = WriteFile("tessera.json", R"({"port": 9003, "data_dir": "/srv/x", "retention_days": 1.5,
                                                   "cpu_lanes": "2"})");
  ServerConfig config = Load({}, {}, path);
  EXPECT_EQ(config.port, 9003);
  EXPECT_EQ(config.data_dir, "/srv/x");
  EXPECT_DOUBLE_EQ(config.retention_days, 1.5);
  EXPECT_EQ(config.cpu_lanes, 2);
}

TEST_F(ServerConfigTest, TesseraConfigNamesTheFileWhenNoPathIsGiven) {
  std::string path = WriteFile("from-env.json", R"({"port": 9004})");
  EXPECT_EQ(Load({}, {{"TESSERA_CONFIG", path}}).port, 9004);
}

// --- precedence: flags > environment > file > defaults ---

TEST_F(ServerConfigTest, FlagsBeatEnvironmentWhichBeatsTheFileWhichBeatsDefaults) {
  std::string path = WriteFile("tessera.json", R"({"port": 1001, "max_attempts": 7, "http_threads": 3})");
  Values env = {{"TESSERA_PORT", "1002"}, {"TESSERA_MAX_ATTEMPTS", "8"}};
  Values flags = {{"port", "1003"}};

  ServerConfig config = Load(flags, env, path);
  EXPECT_EQ(config.port, 1003);         // flag over env and file
  EXPECT_EQ(config.max_attempts, 8);    // env over file
  EXPECT_EQ(config.http_threads, 3);    // file over default
  EXPECT_EQ(config.cpu_lanes, 1);       // default

  EXPECT_EQ(Load({}, env, path).port, 1002);
  EXPECT_EQ(Load({}, {}, path).port, 1001);
}

TEST_F(ServerConfigTest, AnExplicitPathWinsOverTesseraConfig) {
  std::string chosen = WriteFile("chosen.json", R"({"port": 2001})");
  std::string other = WriteFile("other.json", R"({"port": 2002})");
  EXPECT_EQ(Load({}, {{"TESSERA_CONFIG", other}}, chosen).port, 2001);
}

// --- errors name the setting and the source ---

TEST_F(ServerConfigTest, ABadIntegerNamesTheSettingAndItsSource) {
  ExpectRefused({{"port", "80x"}}, {}, "", {"port", "--port", "80x"});
  ExpectRefused({}, {{"TESSERA_PORT", "70000"}}, "", {"port", "TESSERA_PORT", "70000"});
  ExpectRefused({{"cpu_lanes", "0"}}, {}, "", {"cpu_lanes", "--cpu-lanes"});
  std::string path = WriteFile("bad.json", R"({"max_attempts": 2.5})");
  ExpectRefused({}, {}, path, {"max_attempts", "config file", path});
}

TEST_F(ServerConfigTest, ABadNumberNamesTheSettingAndItsSource) {
  ExpectRefused({{"retention_days", "-1"}}, {}, "", {"retention_days", "--retention-days", "-1"});
  ExpectRefused({}, {{"TESSERA_RATE_LIMIT", "lots"}}, "", {"rate_limit_per_minute", "TESSERA_RATE_LIMIT", "lots"});
  ExpectRefused({{"upscale_timeout_s", "nan"}}, {}, "", {"upscale_timeout_s"});
  ExpectRefused({{"rate_limit_burst", "0"}}, {}, "", {"rate_limit_burst"});
  ExpectRefused({{"max_body_mb", ""}}, {}, "", {"max_body_mb"});
}

TEST_F(ServerConfigTest, ABadChoiceNamesTheSettingTheSourceAndTheChoices) {
  ExpectRefused({}, {{"TESSERA_RESIZE_MODE", "stretch"}}, "", {"resize_mode", "TESSERA_RESIZE_MODE", "stretch", "pad", "scale"});
  ExpectRefused({{"restart_policy", "retry"}}, {}, "", {"restart_policy", "--restart-policy", "requeue", "fail"});
}

TEST_F(ServerConfigTest, AnEmptyValueIsRefusedWhereOneIsRequired) {
  ExpectRefused({{"host", ""}}, {}, "", {"host"});
  ExpectRefused({}, {{"TESSERA_DATA_DIR", ""}}, "", {"data_dir", "TESSERA_DATA_DIR"});
}

TEST_F(ServerConfigTest, AnUnknownFlagIsRefusedByName) {
  ExpectRefused({{"prot", "8080"}}, {}, "", {"prot"});
}

TEST_F(ServerConfigTest, AnUnknownConfigFileKeyIsRefusedNamingTheFileAndKey) {
  std::string path = WriteFile("typo.json", R"({"port": 8080, "resultsdir": "/x"})");
  ExpectRefused({}, {}, path, {path, "resultsdir"});
}

TEST_F(ServerConfigTest, AConfigFileThatIsNotAJsonObjectIsRefused) {
  for (const char* text : {"[1, 2]", "\"port\"", "{\"port\": ", "", "port=8080"}) {
    std::string path = WriteFile("not-object.json", text);
    SCOPED_TRACE(text);
    ExpectRefused({}, {}, path, {path});
  }
}

TEST_F(ServerConfigTest, ANestedValueInTheConfigFileIsRefused) {
  std::string path = WriteFile("nested.json", R"({"port": {"value": 8080}})");
  ExpectRefused({}, {}, path, {path, "port"});
}

TEST_F(ServerConfigTest, AnUnreadableConfigFileIsRefusedNamingThePath) {
  std::string missing = (dir_ / "missing.json").string();
  ExpectRefused({}, {}, missing, {missing});
  ExpectRefused({}, {{"TESSERA_CONFIG", missing}}, "", {missing});
}

// --- values that depend on each other ---

TEST_F(ServerConfigTest, ANonLoopbackHostRequiresAToken) {
  ExpectRefused({{"host", "0.0.0.0"}}, {}, "", {"0.0.0.0", "token"});
  ExpectRefused({}, {{"TESSERA_HOST", "192.168.1.20"}}, "", {"token"});
  ServerConfig config = Load({{"host", "0.0.0.0"}}, {{"TESSERA_TOKEN", "s3cret"}});
  EXPECT_EQ(config.host, "0.0.0.0");
  EXPECT_EQ(config.token, "s3cret");
}

TEST_F(ServerConfigTest, LoopbackHostsNeedNoToken) {
  for (const char* host : {"127.0.0.1", "localhost", "::1", "127.0.0.2"}) {
    EXPECT_TRUE(LoadServerConfig({{"host", host}}, {}, "").ok()) << host;
  }
}

TEST_F(ServerConfigTest, HostBaseUrlMustBeHttpOrHttps) {
  ExpectRefused({{"host_base_url", "ftp://x.example"}}, {}, "", {"host_base_url"});
  EXPECT_EQ(Load({{"host_base_url", "https://x.example"}}, {}).host_base_url, "https://x.example");
}

// --- the settings table ---

TEST_F(ServerConfigTest, EverySettingHasHelpAndAUniqueKeyAndEnvironmentVariable) {
  std::set<std::string> keys;
  std::set<std::string> envs;
  ASSERT_FALSE(ServerSettings().empty());
  for (const SettingSpec& spec : ServerSettings()) {
    EXPECT_FALSE(spec.key.empty());
    EXPECT_FALSE(spec.help.empty()) << spec.key;
    EXPECT_TRUE(static_cast<bool>(spec.apply)) << spec.key;
    EXPECT_TRUE(keys.insert(spec.key).second) << "key listed twice: " << spec.key;
    if (!spec.env.empty()) {
      EXPECT_TRUE(envs.insert(spec.env).second) << "environment variable twice: " << spec.env;
    }
    for (char c : spec.key) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << spec.key;
  }
  EXPECT_EQ(envs.count("TESSERA_CONFIG"), 0u);  // that one names the file, it is not a setting
}

}  // namespace
}  // namespace tessera::server
