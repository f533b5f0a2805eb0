// Random UUIDs (RFC 4122 version 4), the ids of jobs and batches.
#pragma once

#include <string>
#include <string_view>

namespace tessera {

// A fresh random UUID v4 in canonical lower-case form,
// "xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx" (N one of 8, 9, a, b). The 122 random bits
// come from the operating system's generator, so ids cannot be predicted from
// earlier ones: an id in a URL is as good as unguessable. Thread-safe.
std::string NewUuidV4();

// True for the canonical form NewUuidV4 produces: 36 characters, hyphens at 8, 13,
// 18 and 23, lower-case hex elsewhere. Any version is accepted; upper case is not,
// because ids are compared byte for byte.
bool IsUuid(std::string_view text);

}  // namespace tessera
