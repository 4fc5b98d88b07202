//! The manager's HTTP API under /v1. (Being written.)
