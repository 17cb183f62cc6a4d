//! The bundled extensions: `extensions/*.toml`, embedded at build time (see build.rs). They
//! are the first entry of the search path; files elsewhere override them by name.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
