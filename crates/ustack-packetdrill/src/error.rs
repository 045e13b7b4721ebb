//! Errors of the parser.

use std::fmt;
use std::path::PathBuf;

/// A syntax error, with the place it was found.
///
/// `Display` gives the one-line form `file:line:column: message`; [`ParseError::render`]
/// adds the offending line with a caret under the column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file name given to the parser (`<input>` for text without a file).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (a tab counts as one).
    pub column: usize,
    /// What is wrong, e.g. ``expected `:` after the start sequence number``.
    pub message: String,
    /// The text of the offending line, without its newline.
    pub line_text: String,
}

impl ParseError {
    /// The error, the offending line and a caret under the column:
    ///
    /// ```text
    /// x.pkt:3:12: unknown TCP flag `X` (flags are S F R P U E W and `.` for ACK)
    ///     +0 < SX 0:0(0) win 1000
    ///            ^
    /// ```
    pub fn render(&self) -> String {
        let prefix: String = self
            .line_text
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!("{self}\n    {}\n    {prefix}^", self.line_text)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Why a script file could not be loaded.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid script.
    Parse(ParseError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            Error::Parse(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Parse(e) => Some(e),
        }
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}
