//! AWS Lambda handlers for Quarry (query, crawl, transform), as plain async functions over
//! shared resources with thin `bin/` mains. The handlers are not written yet; this crate
//! exists so the workspace layout and dependency graph are settled.
