// Which store a server runs on (`tessera serve --store`, TESSERA_STORE): the
// embedded SQLite file by default, or a shared PostgreSQL database named by a
// postgresql:// (or postgres://) URL.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/store.h"
#include "util/status.h"

namespace tessera::store {

// True for a postgresql:// or postgres:// URL.
bool IsPostgresUrl(std::string_view spec);

// Opens the store `spec` names: empty means SQLite at `sqlite_path`; a
// PostgreSQL URL, that database. kInvalid for anything else, saying what is
// accepted.
Result<std::unique_ptr<Store>> OpenStore(const std::string& spec, const std::string& sqlite_path);

// What OpenStore opens, for logs and /ready: the SQLite path, or the URL without
// its password.
std::string DescribeStore(const std::string& spec, const std::string& sqlite_path);

}  // namespace tessera::store
