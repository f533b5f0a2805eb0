#include "worker/keep_alive_loop.h"

#include <chrono>
#include <cstdio>
#include <string>

#include "protocol/frame_reader.h"
#include "util/byte_size.h"
#include "util/log.h"
#include "util/process_memory.h"
#include "worker/batch_processor.h"
#include "worker/response_writer.h"

namespace tessera::worker {
namespace {

using Clock = std::chrono::steady_clock;
using protocol::FrameEventKind;
using protocol::WireStatus;

std::string Hex(const uint8_t* data, size_t n) {
  std::string out;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", data[i]);
    if (i > 0) out.push_back(' ');
    out += b;
  }
  return out;
}

// Largest response payload the u32 message_len can describe.
constexpr uint64_t kMaxResponsePayload = 0xFFFFFFFFull;

}  // namespace

KeepAliveLoop::KeepAliveLoop(const WorkerOptions& options, int input_fd, int output_fd)
    : options_(options), input_fd_(input_fd), output_fd_(output_fd) {}

int KeepAliveLoop::Run(bool single_request) {
  FdByteSource source(input_fd_);
  protocol::FrameReader reader(source, {options_.limits.max_message_bytes});
  protocol::RequestLimits request_limits{options_.limits.max_batch_items, options_.limits.max_image_bytes};
  BatchProcessor processor(options_);

  auto answer_error = [&](uint64_t request_id, WireStatus status, const std::string& message) {
    Status written = WriteErrorResponse(output_fd_, request_id, status, message);
    if (written.ok()) ++answered_;
    return written;
  };
  auto write_failed = [](const Status& s) {
    LogError("output_closed").Field("error", s.message());
    return 1;
  };

  for (;;) {
    ResetPeakRss();
    const uint64_t rss_before = CurrentRssBytes();
    auto wait_start = Clock::now();
    protocol::FrameEvent event = reader.Next();
    auto frame_read = Clock::now();
    if (event.skipped_bytes > 0) {
      LogWarn("protocol_resync").Field("skipped_bytes", event.skipped_bytes);
    }
    const uint64_t header_request_id = event.header ? event.header->request_id : 0;

    switch (event.kind) {
      case FrameEventKind::kEndOfStream: LogInfo("input_closed").Field("requests", answered_); return 0;
      case FrameEventKind::kReadError: LogError("input_failed").Field("error", event.error.message()); return 1;
      case FrameEventKind::kTruncated: {
        LogWarn("protocol_error").Field("kind", "truncated").Field("declared_len", event.declared_length);
        if (event.header && event.header->magic == protocol::kMagic) {
          Status s = answer_error(header_request_id, WireStatus::kProtocol,
                                  "truncated frame: input ended before message_len " +
                                      std::to_string(event.declared_length) + " bytes arrived");
          if (!s.ok()) return write_failed(s);
        }
        LogInfo("input_closed").Field("requests", answered_);
        return 0;
      }
      case FrameEventKind::kOversized: {
        LogWarn("protocol_error")
            .Field("kind", "oversized")
            .Field("request_id", header_request_id)
            .Field("declared_len", event.declared_length);
        Status s =
            answer_error(header_request_id, WireStatus::kLimit,
                         "message_len " + std::to_string(event.declared_length) + " exceeds --max-message-bytes " +
                             std::to_string(options_.limits.max_message_bytes) + "; split the batch");
        if (!s.ok()) return write_failed(s);
        if (single_request) return 0;
        continue;
      }
      case FrameEventKind::kCorrupt: {
        LogWarn("protocol_error").Field("kind", "corrupt").Field("declared_len", event.declared_length);
        Status s = answer_error(0, WireStatus::kProtocol,
                                "corrupt stream: no valid frame header (bad magic or length); "
                                "skipping to the next valid header");
        if (!s.ok()) return write_failed(s);
        if (single_request) return 0;
        continue;
      }
      case FrameEventKind::kFrame: break;
    }

    // A whole frame: validate, process, answer.
    if (options_.log_protocol) {
      LogInfo("frame")
          .Field("declared_len", event.declared_length)
          .Field("header_hex",
                 Hex(event.payload.data(), std::min<size_t>(event.payload.size(), protocol::kHeaderSize)));
    }
    protocol::DecodedRequest decoded = protocol::DecodeRequest(event.payload, request_limits);
    auto validated = Clock::now();
    const uint64_t request_id = decoded.request_id.value_or(0);
    const protocol::Request& request = decoded.request;

    BatchOutcome outcome;
    if (!decoded.status.ok()) {
      outcome.status = decoded.status;
    } else {
      Deadline deadline = Deadline::After(options_.request_timeout);
      outcome = processor.Process(request, event.payload.size(), deadline);
    }
    auto processed = Clock::now();

    uint64_t output_bytes = 0;
    for (const auto& o : outcome.outputs) output_bytes += o.size() + 4;
    if (outcome.status.ok() && output_bytes + protocol::kHeaderSize + 12 > kMaxResponsePayload) {
      outcome.status = LimitError("response would be " + FormatBytes(output_bytes) +
                                  ", over the 4 GiB a frame can carry; send fewer images per request");
      outcome.outputs.clear();
    }

    WireStatus wire = protocol::ToWireStatus(outcome.status.code());
    Status written = outcome.status.ok() ? WriteOkResponse(output_fd_, request_id, outcome.outputs)
                                         : WriteErrorResponse(output_fd_, request_id, wire, outcome.status.message());
    auto done = Clock::now();
    if (written.ok()) ++answered_;

    auto ms = [](Clock::time_point a, Clock::time_point b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    {
      LogLine line(outcome.status.ok() ? LogLevel::kInfo : LogLevel::kWarn, "request");
      line.Field("request_id", request_id)
          .Field("engine", decoded.status.ok() ? std::string(protocol::EngineName(request.engine)) : "-")
          .Field("quality", decoded.status.ok() ? std::string(request.quality) : "-")
          .Field("gpu_id", decoded.status.ok() ? request.gpu_id : -1)
          .Field("device", outcome.device.empty() ? "-" : outcome.device)
          .Field("batch_count", static_cast<uint64_t>(request.images.size()))
          .Field("status", protocol::WireStatusName(wire));
      if (!outcome.status.ok()) line.Field("error", outcome.status.message());
      if (outcome.device_fell_back) line.Field("gpu_fallback", true);
      line.Field("decode_ms", outcome.timings.decode_ms)
          .Field("process_ms", outcome.timings.process_ms)
          .Field("encode_ms", outcome.timings.encode_ms)
          .Field("total_ms", ms(frame_read, done))
          .Field("peak_rss_mb", ToMiB(PeakRssBytes()));
      if (options_.profiling) {
        line.Field("wait_ms", ms(wait_start, frame_read))
            .Field("validate_ms", ms(frame_read, validated))
            .Field("probe_ms", outcome.timings.probe_ms)
            .Field("slowest_image_ms", outcome.timings.slowest_image_ms)
            .Field("pipelined", outcome.pipelined)
            .Field("pixels_ms", outcome.timings.pixels_ms)
            .Field("write_ms", ms(processed, done))
            .Field("payload_mb", ToMiB(event.payload.size()))
            .Field("output_mb", ToMiB(output_bytes))
            .Field("estimate_mb", ToMiB(outcome.estimated_peak_bytes))
            .Field("input_mpx", static_cast<double>(outcome.input_pixels) / 1e6)
            .Field("output_mpx", static_cast<double>(outcome.output_pixels) / 1e6)
            .Field("rss_before_mb", ToMiB(rss_before))
            .Field("rss_after_mb", ToMiB(CurrentRssBytes()));
      }
    }
    if (!written.ok()) return write_failed(written);

    // A frame whose body does not add up may have swallowed the start of the next
    // one (a message_len too large): give those bytes back to the reader.
    StatusCode code = decoded.status.code();
    if (code == StatusCode::kProtocol || code == StatusCode::kInvalid) {
      if (reader.RecoverSwallowedFrame(std::move(event.payload))) {
        LogWarn("protocol_resync").Field("detail", "next frame found inside a malformed one");
      }
    }
    if (single_request) return 0;
  }
}

}  // namespace tessera::worker
