//! Capture: watching a site's tree for local writes (inotify), debounced, with a rescan
//! whenever events may have been lost. Capture reports *which paths to look at*; the
//! replica decides what changed by comparing the path with the version it knows.
