//! Every file in `config/examples/` loads, with no warnings.

use std::path::Path;

use logship_config::load_str;

#[test]
fn every_example_loads_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let env = |name: &str| match name {
        "LOKI_PASSWORD" => Some("example-password".to_owned()),
        _ => None,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let origin = path.display().to_string();
            let loaded = match load_str(&text, &origin, &env) {
                Ok(loaded) => loaded,
                Err(e) => panic!("{:?}", miette::Report::new(e)),
            };
            assert!(
                loaded.warnings.is_empty(),
                "{origin}: {:?}",
                loaded.warnings
            );
            assert!(!loaded.graph.is_empty());
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "all-options.toml",
            "docker-to-loki.toml",
            "file-to-console.toml",
            "file-to-loki.toml",
            "stdin-sidecar.toml",
        ]
    );
}
