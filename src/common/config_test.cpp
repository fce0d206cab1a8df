#include "common/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace cdx {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& s : settings()) unsetenv(s.env.c_str());
  }
  void TearDown() override { SetUp(); }
  std::string write_toml(const std::string& text) {
    // One file per test: ctest runs the tests as separate processes, two at a time.
    std::string path = ::testing::TempDir() + "/cdx_config_test_" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml";
    std::ofstream(path) << text;
    return path;
  }
};

TEST_F(ConfigTest, Defaults) {
  Config c = load_config({}, "");
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 3000);
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_GT(c.threads, 0);
  EXPECT_EQ(c.issuer(), "http://127.0.0.1:3000");
}

TEST_F(ConfigTest, PrecedenceFlagOverEnvOverFile) {
  const std::string file = write_toml("port = 4000\nhost = \"0.0.0.0\"\ndata_dir = \"/f\"\n");
  setenv("CDX_PORT", "5000", 1);
  setenv("CDX_DATA_DIR", "/e", 1);
  Config c = load_config({{"port", "6000"}}, file);
  EXPECT_EQ(c.port, 6000);
  EXPECT_EQ(c.data_dir, "/e");
  EXPECT_EQ(c.host, "0.0.0.0");
}

TEST_F(ConfigTest, UnknownFileKeyFails) {
  const std::string file = write_toml("prot = 4000\n");
  try {
    load_config({}, file);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("prot"), std::string::npos);
  }
}

TEST_F(ConfigTest, BadValuesFailNamingTheSetting) {
  EXPECT_THROW(load_config({{"port", "70000"}}, ""), ConfigError);
  EXPECT_THROW(load_config({{"port", "abc"}}, ""), ConfigError);
  EXPECT_THROW(load_config({{"database_url", "mysql://x"}}, ""), ConfigError);
  EXPECT_THROW(load_config({{"bootstrap_superadmin", "nocolon"}}, ""), ConfigError);
  EXPECT_THROW(load_config({{"access_token_ttl", "7200"}}, ""), ConfigError);
  // The heartbeat stays well inside the gateway's quiet limit for an event stream (10 min).
  EXPECT_EQ(load_config({{"sse_heartbeat_ms", "300000"}}, "").sse_heartbeat_ms, 300'000);
  EXPECT_THROW(load_config({{"sse_heartbeat_ms", "300001"}}, ""), ConfigError);
  setenv("CDX_DEMO", "maybe", 1);
  try {
    load_config({}, "");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CDX_DEMO"), std::string::npos);
  }
}

TEST_F(ConfigTest, PublicUrlIsTheIssuer) {
  Config c = load_config({{"public_url", "https://api.example.com/"}}, "");
  EXPECT_EQ(c.issuer(), "https://api.example.com");
}

}  // namespace
}  // namespace cdx
