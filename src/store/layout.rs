//! Tree-relative paths of a module's files and of the checksum database, built
//! only from validated, `!`-escaped components.

use crate::gomod::{self, ModuleError};

/// `<module>` escaped.
pub fn module_dir(module: &str) -> Result<String, ModuleError> {
    gomod::escape_path(module)
}

/// `<module>/@v/<version>.<ext>`.
pub fn version_file(module: &str, version: &str, ext: &str) -> Result<String, ModuleError> {
    Ok(format!(
        "{}/@v/{}.{ext}",
        gomod::escape_path(module)?,
        gomod::escape_version(version)?
    ))
}

/// `<module>/@v/list`.
pub fn list(module: &str) -> Result<String, ModuleError> {
    Ok(format!("{}/@v/list", gomod::escape_path(module)?))
}

/// `<module>/@latest`.
pub fn latest(module: &str) -> Result<String, ModuleError> {
    Ok(format!("{}/@latest", gomod::escape_path(module)?))
}

/// `sumdb/<name>`.
pub fn sumdb_dir(name: &str) -> String {
    format!("sumdb/{name}")
}

/// `sumdb/<name>/lookup/<module>@<version>`.
pub fn lookup(name: &str, module: &str, version: &str) -> Result<String, ModuleError> {
    Ok(format!(
        "sumdb/{name}/lookup/{}@{}",
        gomod::escape_path(module)?,
        gomod::escape_version(version)?
    ))
}
