//! Property test: incremental builds give the configs of full builds.
