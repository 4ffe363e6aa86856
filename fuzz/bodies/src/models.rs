//! The manifests of the models Ferry ships, parsed once: the image and envelope bodies
//! preprocess and check inputs exactly as an agent or an edge serving them would.

use std::path::Path;
use std::sync::OnceLock;

use ferry_runtime::Manifest;

const SHIPPED: [(&str, &str); 2] = [
    (
        "models/digits/manifest.toml",
        include_str!("../../../models/digits/manifest.toml"),
    ),
    (
        "models/efficientnet-lite0/manifest.toml",
        include_str!("../../../models/efficientnet-lite0/manifest.toml"),
    ),
];

/// The shipped manifests (they parse: a test says so).
pub fn manifests() -> &'static [Manifest] {
    static MANIFESTS: OnceLock<Vec<Manifest>> = OnceLock::new();
    MANIFESTS.get_or_init(|| {
        SHIPPED
            .iter()
            .map(
                |(path, text)| match Manifest::parse(text, Path::new(path)) {
                    Ok(m) => m,
                    Err(e) => panic!("shipped manifest {path} does not parse: {e}"),
                },
            )
            .collect()
    })
}
