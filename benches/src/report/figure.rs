//! What a drawn plot leaves behind, shared by every section's plotting code.

/// One plot file and whether it was drawn.
#[derive(Debug)]
pub struct Plot {
    /// File name inside the report directory.
    pub file: String,
    /// What it shows.
    pub title: String,
    /// Drawn, or why not.
    pub result: Result<(), String>,
}
