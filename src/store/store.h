// A whole store: the job part and the batch part behind one object. Every
// implementation (SQLite, PostgreSQL) is both, because a batch, its images and
// their jobs are created and retried in one transaction of one database.
#pragma once

#include "store/batch_store.h"
#include "store/job_store.h"

namespace tessera::store {

class Store : public JobStore, public BatchStore {};

}  // namespace tessera::store
