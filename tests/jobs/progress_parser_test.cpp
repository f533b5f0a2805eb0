#include "jobs/progress_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace tessera::jobs {
namespace {

using Source = ProgressEvent::Source;

ProgressEvent Structured(int64_t step, int64_t total) { return {step, total, Source::kStructured}; }
ProgressEvent Heuristic(int64_t step, int64_t total) { return {step, total, Source::kHeuristic}; }

// --- tier A -----------------------------------------------------------------

TEST(ProgressParserTest, ReadsTheStructuredLine) {
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":15,"total":40})"), Structured(15, 40));
}

TEST(ProgressParserTest, StructuredLineIgnoresExtraKeysAndSurroundingSpace) {
  EXPECT_EQ(ParseProgressLine(R"(  TESSERA_PROGRESS   {"phase":"denoise","total":40,"step":3,"eta":1.5}  )"),
            Structured(3, 40));
}

TEST(ProgressParserTest, StructuredLineMayFollowALoggerPrefix) {
  EXPECT_EQ(ParseProgressLine(R"(2025-01-02 10:00:00 INFO TESSERA_PROGRESS {"step":1,"total":2})"), Structured(1, 2));
}

TEST(ProgressParserTest, StructuredLineAcceptsWholeFloats) {
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":15.0,"total":40.0})"), Structured(15, 40));
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":15.5,"total":40})"), std::nullopt);
}

TEST(ProgressParserTest, MalformedStructuredLinesYieldNothing) {
  for (const char* line : {
           R"(TESSERA_PROGRESS)",
           R"(TESSERA_PROGRESS {"step":15,"total":40)",     // unterminated
           R"(TESSERA_PROGRESS {"step":15})",               // no total
           R"(TESSERA_PROGRESS {"step":"15","total":40})",  // string
           R"(TESSERA_PROGRESS [15,40])",                   // not an object
           R"(TESSERA_PROGRESS {"step":15,"total":40} trailing)",
           R"(TESSERA_PROGRESS {"step":null,"total":40})",
           R"(TESSERA_PROGRESS {"step":1,"total":99999999999999999999999})",
           R"(TESSERA_PROGRESS {"step":1e400,"total":40})",
           "TESSERA_PROGRESS {\"step\":1,\"total\":\xff\xfe}",
       }) {
    EXPECT_EQ(ParseProgressLine(line), std::nullopt) << line;
  }
}

TEST(ProgressParserTest, MalformedStructuredLineDoesNotFallBackToHeuristics) {
  // The marker says "read me as JSON"; a broken payload must not be half-read as "15/40".
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step": 15/40})"), std::nullopt);
}

TEST(ProgressParserTest, StructuredLineRejectsNonsenseCounts) {
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":0,"total":0})"), std::nullopt);
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":41,"total":40})"), std::nullopt);
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":-1,"total":40})"), std::nullopt);
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":1,"total":-40})"), std::nullopt);
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":0,"total":40})"), Structured(0, 40));
  EXPECT_EQ(ParseProgressLine(R"(TESSERA_PROGRESS {"step":40,"total":40})"), Structured(40, 40));
}

// --- tier B: tqdm -------------------------------------------------------------

TEST(ProgressParserTest, ReadsATqdmBar) {
  EXPECT_EQ(ParseProgressLine(" 37%|███▋      | 15/40 [00:12<00:20,  1.23it/s]"), Heuristic(15, 40));
}

TEST(ProgressParserTest, ReadsATqdmBarWithADescriptionAndAsciiBar) {
  EXPECT_EQ(ParseProgressLine("Sampling:  50%|#####     | 20/40 [01:00<01:00,  3.00s/it]"), Heuristic(20, 40));
}

TEST(ProgressParserTest, TakesTheLastTqdmRedrawOfALine) {
  std::string line =
      "\r  0%|          | 0/40 [00:00<?, ?it/s]"
      "\r  2%|▎         | 1/40 [00:01<00:39,  1.00s/it]"
      "\r  5%|▌         | 2/40 [00:02<00:38,  1.00s/it]";
  EXPECT_EQ(ParseProgressLine(line), Heuristic(2, 40));
}

TEST(ProgressParserTest, SkipsATrailingRedrawThatIsNotProgress) {
  // tqdm clears its line with "\r" + spaces when it closes; the last bar still counts.
  EXPECT_EQ(ParseProgressLine("\r 97%|#########7| 39/40 [00:39<00:01]\r100%|##########| 40/40 [00:40<00:00]\r      \r"),
            Heuristic(40, 40));
}

TEST(ProgressParserTest, TqdmWithoutATotalIsNoProgress) {
  EXPECT_EQ(ParseProgressLine("15it [00:12,  1.23it/s]"), std::nullopt);
}

TEST(ProgressParserTest, RejectsNonsenseTqdmCounts) {
  EXPECT_EQ(ParseProgressLine("  0%|          | 0/0 [00:00<?, ?it/s]"), std::nullopt);
  EXPECT_EQ(ParseProgressLine("100%|##########| 41/40 [00:00<?, ?it/s]"), std::nullopt);
}

// --- tier B: text ------------------------------------------------------------------

TEST(ProgressParserTest, ReadsCounterText) {
  EXPECT_EQ(ParseProgressLine("step 15/40"), Heuristic(15, 40));
  EXPECT_EQ(ParseProgressLine("Step 15 / 40"), Heuristic(15, 40));
  EXPECT_EQ(ParseProgressLine("frame 3/81"), Heuristic(3, 81));
  EXPECT_EQ(ParseProgressLine("sampling step 15 of 40"), Heuristic(15, 40));
  EXPECT_EQ(ParseProgressLine("[INFO] Denoising STEP: 7 of 50, loss=0.1"), Heuristic(7, 50));
  EXPECT_EQ(ParseProgressLine("frames 12 / 81 decoded"), Heuristic(12, 81));
  EXPECT_EQ(ParseProgressLine("iteration #4 out of 9"), Heuristic(4, 9));
  EXPECT_EQ(ParseProgressLine("step=2/8"), Heuristic(2, 8));
}

TEST(ProgressParserTest, TheFirstCounterOfAnUpdateWins) {
  EXPECT_EQ(ParseProgressLine("step 15/40 frame 3/81"), Heuristic(15, 40));
}

TEST(ProgressParserTest, IgnoresTextThatOnlyLooksLikeACounter) {
  for (const char* line : {
           "loading 3/4 shards",          // no keyword
           "2025/01/02 starting",         // a date
           "steppe 3/4",                  // not the word "step"
           "substep 3/4",                 // keyword inside a word
           "framework 1/2",               //
           "step 1.5/40",                 // not whole numbers
           "step 15/40.5",                //
           "step 2024/05/03",             // a date after a keyword
           "step 15",                     // no total
           "step / 40",                   // no step
           "step -3/40",                  // negative
           "frame 3/-81",                 //
           "step 0/0",                    // total 0
           "step 41/40",                  // step > total
           "step 1/1234567890123456789",  // absurdly long number
           "",                            //
           "\r\r\n",                      //
       }) {
    EXPECT_EQ(ParseProgressLine(line), std::nullopt) << '"' << line << '"';
  }
}

TEST(ProgressParserTest, CounterTextBehindACarriageReturnIsSeen) {
  EXPECT_EQ(ParseProgressLine("step 1/4\rstep 2/4\n"), Heuristic(2, 4));
}

TEST(ProgressParserTest, AnEarlierUpdateWinsWhenTheLastSaysNothing) {
  EXPECT_EQ(ParseProgressLine("step 3/4\rsaving video..."), Heuristic(3, 4));
}

TEST(ProgressParserTest, ProgressFractionIsStepOverTotal) {
  EXPECT_DOUBLE_EQ(ProgressFraction({10, 40, Source::kHeuristic}), 0.25);
  EXPECT_DOUBLE_EQ(ProgressFraction({40, 40, Source::kHeuristic}), 1.0);
  EXPECT_DOUBLE_EQ(ProgressFraction({0, 40, Source::kHeuristic}), 0.0);
  EXPECT_DOUBLE_EQ(ProgressFraction({50, 40, Source::kHeuristic}), 0.0);  // invalid: no claim
}

TEST(ProgressParserTest, SourceNames) {
  EXPECT_STREQ(ProgressSourceName(Source::kStructured), "structured");
  EXPECT_STREQ(ProgressSourceName(Source::kHeuristic), "heuristic");
}

// --- ProgressTracker ------------------------------------------------------------

TEST(ProgressTrackerTest, StartsWithNoEvent) {
  ProgressTracker tracker;
  EXPECT_EQ(tracker.latest(), std::nullopt);
  tracker.Feed("loading model\n");
  EXPECT_EQ(tracker.latest(), std::nullopt);
}

TEST(ProgressTrackerTest, ReassemblesLinesSplitAtEveryByte) {
  std::string output = "loading\nstep 1/4\nTESSERA_PROGRESS {\"step\":2,\"total\":4}\nstep 3/4\n";
  ProgressTracker tracker;
  std::optional<ProgressEvent> seen_after_second;
  for (size_t i = 0; i < output.size(); ++i) {
    tracker.Feed(std::string_view(output).substr(i, 1));
    if (i + 1 == output.find("step 3/4")) seen_after_second = tracker.latest();
  }
  EXPECT_EQ(seen_after_second, Structured(2, 4));
  EXPECT_EQ(tracker.latest(), Heuristic(3, 4));
}

TEST(ProgressTrackerTest, DoesNotReadAnUnterminatedCounterEarly) {
  // "step 1/4" is a prefix of "step 1/40": reading it before the line ends would be wrong.
  ProgressTracker tracker;
  tracker.Feed("step 1/4");
  EXPECT_EQ(tracker.latest(), std::nullopt);
  tracker.Feed("0\n");
  EXPECT_EQ(tracker.latest(), Heuristic(1, 40));
}

TEST(ProgressTrackerTest, ReadsACompleteTqdmRedrawBeforeTheNextOne) {
  ProgressTracker tracker;
  tracker.Feed("\r  2%|▎         | 1/40 [00:01<00:39,  1.00s/it]");
  EXPECT_EQ(tracker.latest(), Heuristic(1, 40));
  tracker.Feed("\r  5%|▌         | 2/40 [00:02<00:38,  1.");  // the redraw is cut mid-write
  EXPECT_EQ(tracker.latest(), Heuristic(1, 40));
  tracker.Feed("00s/it]");
  EXPECT_EQ(tracker.latest(), Heuristic(2, 40));
}

TEST(ProgressTrackerTest, SplitsOnCarriageReturnsAndNewlines) {
  ProgressTracker tracker;
  tracker.Feed("step 1/9\rstep 2/9\r\nstep 3/9\n\rdone\n");
  EXPECT_EQ(tracker.latest(), Heuristic(3, 9));
}

TEST(ProgressTrackerTest, FinishReadsTheUnterminatedRest) {
  ProgressTracker tracker;
  tracker.Feed("step 1/4\nstep 4/4");
  EXPECT_EQ(tracker.latest(), Heuristic(1, 4));
  tracker.Finish();
  EXPECT_EQ(tracker.latest(), Heuristic(4, 4));
}

TEST(ProgressTrackerTest, LatestEventIsKeptAcrossLinesWithoutProgress) {
  ProgressTracker tracker;
  tracker.Feed("step 2/4\nwarning: something\n\n");
  EXPECT_EQ(tracker.latest(), Heuristic(2, 4));
}

TEST(ProgressTrackerTest, DropsAnOverlongLineWithoutParsingItsPieces) {
  ProgressTracker tracker(/*max_line_bytes=*/32);
  tracker.Feed("step 1/4\n");
  // 40 bytes of noise then what would look like a counter: all one overlong line.
  tracker.Feed(std::string(40, 'x'));
  tracker.Feed(" step 3/4");
  tracker.Feed("\n");
  EXPECT_EQ(tracker.latest(), Heuristic(1, 4));
  tracker.Feed("step 2/4\n");
  EXPECT_EQ(tracker.latest(), Heuristic(2, 4));
  EXPECT_EQ(tracker.overlong_lines(), 1u);
}

TEST(ProgressTrackerTest, ANeverEndingLineDoesNotGrowWithoutBound) {
  ProgressTracker tracker(/*max_line_bytes=*/1024);
  std::string noise(4096, 'y');
  for (int i = 0; i < 1000; ++i) {  // 4 MB, no newline
    tracker.Feed(noise);
    ASSERT_LE(tracker.buffered_bytes(), 1024u);
  }
  EXPECT_EQ(tracker.overlong_lines(), 1u);
  tracker.Feed("\nstep 5/6\n");
  EXPECT_EQ(tracker.latest(), Heuristic(5, 6));
}

TEST(ProgressTrackerTest, ALineExactlyAtTheCapIsStillRead) {
  std::string line = "step 7/8";
  line.insert(0, 32 - line.size(), ' ');
  ASSERT_EQ(line.size(), 32u);
  ProgressTracker tracker(/*max_line_bytes=*/32);
  tracker.Feed(line);
  tracker.Feed("\n");
  EXPECT_EQ(tracker.latest(), Heuristic(7, 8));
  EXPECT_EQ(tracker.overlong_lines(), 0u);
}

}  // namespace
}  // namespace tessera::jobs
