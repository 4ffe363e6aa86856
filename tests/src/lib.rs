//! `ferry-tests` owns Ferry's end-to-end tests: they start real processes (the `ferry` and
//! `ferry-edge` binaries, a broker) and check what crosses between them.
#![deny(unsafe_code, missing_docs)]
