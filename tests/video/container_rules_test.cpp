// The container rules, decided from stream descriptions alone (no files).
#include "video/container_rules.h"

#include <gtest/gtest.h>

namespace tessera::video {
namespace {

TEST(ContainerRulesTest, TheExtensionPicksTheContainer) {
  EXPECT_EQ(*ContainerForPath("a/b.MP4"), Container::kMp4);
  EXPECT_EQ(*ContainerForPath("b.m4v"), Container::kMp4);
  EXPECT_EQ(*ContainerForPath("b.mov"), Container::kMov);
  EXPECT_EQ(*ContainerForPath("b.mkv"), Container::kMatroska);
  EXPECT_EQ(*ContainerForPath("b.webm"), Container::kWebm);
  Result<Container> avi = ContainerForPath("out.avi");
  ASSERT_FALSE(avi.ok());
  EXPECT_NE(avi.status().message().find(".mp4, .m4v, .mov, .mkv or .webm"), std::string::npos);
  EXPECT_FALSE(ContainerForPath("dir.mkv/out").ok());
}

TEST(ContainerRulesTest, Ffv1OnlyInMatroskaAndH26xNotInWebm) {
  EXPECT_TRUE(CheckVideoCodec(Container::kMatroska, "ffv1").ok());
  Status s = CheckVideoCodec(Container::kMp4, "ffv1");
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("only allowed in MKV"), std::string::npos) << s.message();
  EXPECT_FALSE(CheckVideoCodec(Container::kWebm, "libx264").ok());
  EXPECT_TRUE(CheckVideoCodec(Container::kWebm, "libvpx-vp9").ok());
  EXPECT_TRUE(CheckVideoCodec(Container::kMp4, "hevc_nvenc").ok());
  Status unknown = CheckVideoCodec(Container::kMp4, "mpeg2video");
  EXPECT_NE(unknown.message().find("libx264, libx265"), std::string::npos) << unknown.message();
}

TEST(ContainerRulesTest, SubtitlesBecomeMovTextInMp4AndStayInMatroska) {
  const std::vector<InputStream> streams{{0, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_H264},
                                         {1, AVMEDIA_TYPE_AUDIO, AV_CODEC_ID_AAC},
                                         {2, AVMEDIA_TYPE_SUBTITLE, AV_CODEC_ID_SUBRIP},
                                         {3, AVMEDIA_TYPE_SUBTITLE, AV_CODEC_ID_MOV_TEXT}};
  Result<std::vector<StreamPlan>> mp4 = PlanStreams(Container::kMp4, streams, 0);
  ASSERT_TRUE(mp4.ok()) << mp4.status().message();
  EXPECT_EQ((*mp4)[0].action, StreamAction::kUpscale);
  EXPECT_EQ((*mp4)[1].action, StreamAction::kCopy);
  EXPECT_EQ((*mp4)[2].action, StreamAction::kSubtitleToMovText);
  EXPECT_EQ((*mp4)[3].action, StreamAction::kCopy);
  Result<std::vector<StreamPlan>> mkv = PlanStreams(Container::kMatroska, streams, 0);
  ASSERT_TRUE(mkv.ok()) << mkv.status().message();
  EXPECT_EQ((*mkv)[2].action, StreamAction::kCopy);
  EXPECT_EQ((*mkv)[3].action, StreamAction::kSubtitleToSubrip);
}

TEST(ContainerRulesTest, WhatAContainerCannotHoldIsRefusedNamingTheStream) {
  Result<std::vector<StreamPlan>> pgs = PlanStreams(
      Container::kMp4,
      {{0, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_H264}, {1, AVMEDIA_TYPE_SUBTITLE, AV_CODEC_ID_HDMV_PGS_SUBTITLE}}, 0);
  ASSERT_FALSE(pgs.ok());
  EXPECT_NE(pgs.status().message().find("subtitle stream #1 (hdmv_pgs_subtitle)"), std::string::npos)
      << pgs.status().message();
  EXPECT_NE(pgs.status().message().find(".mkv"), std::string::npos);
  Result<std::vector<StreamPlan>> pcm = PlanStreams(
      Container::kMp4, {{0, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_H264}, {1, AVMEDIA_TYPE_AUDIO, AV_CODEC_ID_PCM_S16LE}}, 0);
  ASSERT_FALSE(pcm.ok());
  EXPECT_NE(pcm.status().message().find("audio stream #1 (pcm_s16le)"), std::string::npos) << pcm.status().message();
  EXPECT_TRUE(PlanStreams(Container::kMatroska,
                          {{0, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_H264}, {1, AVMEDIA_TYPE_AUDIO, AV_CODEC_ID_PCM_S16LE}},
                          0)
                  .ok());
  Result<std::vector<StreamPlan>> webm = PlanStreams(
      Container::kWebm, {{0, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_VP9}, {1, AVMEDIA_TYPE_SUBTITLE, AV_CODEC_ID_SUBRIP}}, 0);
  EXPECT_FALSE(webm.ok());
}

TEST(ContainerRulesTest, ExtraVideoAttachmentsAndDataAreLeftOutWithAReason) {
  const std::vector<InputStream> streams{{0, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_H264},
                                         {1, AVMEDIA_TYPE_VIDEO, AV_CODEC_ID_MJPEG},
                                         {2, AVMEDIA_TYPE_ATTACHMENT, AV_CODEC_ID_TTF},
                                         {3, AVMEDIA_TYPE_DATA, AV_CODEC_ID_NONE}};
  Result<std::vector<StreamPlan>> mp4 = PlanStreams(Container::kMp4, streams, 0);
  ASSERT_TRUE(mp4.ok());
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ((*mp4)[i].action, StreamAction::kDrop) << i;
    EXPECT_FALSE((*mp4)[i].reason.empty()) << i;
  }
  Result<std::vector<StreamPlan>> mkv = PlanStreams(Container::kMatroska, streams, 0);
  ASSERT_TRUE(mkv.ok());
  EXPECT_EQ((*mkv)[2].action, StreamAction::kCopy);  // fonts stay with their subtitles
}

}  // namespace
}  // namespace tessera::video
