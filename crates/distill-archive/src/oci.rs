//! The OCI image layout's fixed files: `oci-layout` (the layout version) and `index.json` (the
//! entry points), as the image spec defines them. Blobs live at `blobs/<algorithm>/<hex>`.

/// The index of a layout.
pub const INDEX_JSON: &str = "index.json";
/// The layout marker file.
pub const OCI_LAYOUT: &str = "oci-layout";
/// The only layout version there is.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// The content of the `oci-layout` file we write.
pub fn layout_file() -> Vec<u8> {
    format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#).into_bytes()
}

/// Checks an `oci-layout` file: JSON naming version 1.0.0.
pub fn check_layout_file(bytes: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout: Layout =
        serde_json::from_slice(bytes).map_err(|err| format!("{OCI_LAYOUT} is malformed: {err}"))?;
    if layout.version != LAYOUT_VERSION {
        return Err(format!(
            "{OCI_LAYOUT} says image layout version {:?}; only {LAYOUT_VERSION} is known",
            layout.version
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_layout_file_passes_our_check() {
        check_layout_file(&layout_file()).unwrap();
        assert!(check_layout_file(br#"{"imageLayoutVersion":"2.0.0"}"#)
            .unwrap_err()
            .contains("2.0.0"));
        assert!(check_layout_file(b"{}").unwrap_err().contains("malformed"));
    }
}
