//! packetdrill scripts for ustack: the script language's parser and data model, and a
//! runner that plays them against ustack in virtual time ([`runner`], [`suite`]).
//!
//! [packetdrill](https://github.com/google/packetdrill) scripts describe a TCP conversation
//! line by line: system calls the application makes, packets the script injects (`<`) and
//! packets the stack must send (`>`), each at a time. This crate reads them, including the
//! dialect of the FreeBSD TCP test suite (nplab's packetdrill): `#ifdef` sections, ECN and
//! IP-header annotations, `/udp(...)` encapsulation, `md5` options, `!` absolute sequence
//! numbers and commands without a time before the first and after the last event.
//!
//! ```
//! use ustack_packetdrill::{parse_str, EventKind, TimeKind};
//!
//! let script = parse_str("example.pkt", "
//! --tolerance_usecs=50000
//! 0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
//! +0  connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
//! +0  > S 0:0(0) win 65535 <mss 1460,sackOK>
//! ").unwrap();
//! assert_eq!(script.option("tolerance_usecs"), Some(Some("50000")));
//! assert_eq!(script.events.len(), 3);
//! assert_eq!(script.events[1].time.kind, TimeKind::Relative(0));
//! let EventKind::Packet(syn) = &script.events[2].kind else { panic!() };
//! assert!(syn.tcp().unwrap().flags.syn());
//! ```
//!
//! The grammar, as this parser reads it:
//!
//! ```text
//! script    := { option | directive | command | event }      (options first)
//! option    := "--" name [ "=" value ]
//! directive := "#ifdef" SYM | "#ifndef" SYM | "#else" | "#endif"
//! command   := "`" text "`"                  (no time: before the first / after the last event)
//! event     := time ( packet | syscall | "`" text "`" | "%{" code "}%" )   end of line
//! time      := point [ "~" point | "..." point ]
//! point     := "*" | [ "+" ] decimal
//! packet    := ("<" | ">") { "[" ecn "]" | "(" field value { "," field value } ")" }
//!              ( tcp | "icmp" type [code] [ "mtu" N ] [ "[" seq "(" N ")" "]" ] | "udp" "(" N ")" )
//!              [ "/udp(" port ">" port ")" ]
//! tcp       := flags seq "(" len ")" [ "!" ] { "ack" N | "win" N | "urg" N } [ "<" options ">" ]
//! seq       := N ":" N | "..."
//! options   := "..." | [ opt { "," opt } ]
//! opt       := "mss" N | "wscale" N | "sackOK" | "sack" { N ":" N } | "TS" "val" N "ecr" N
//!            | "nop" | "eol" | "md5" ("valid" | "invalid")
//! syscall   := name "(" [ expr { "," expr } ] ")" "=" expr [ ERRNO ] [ "(" text ")" ]
//! expr      := primary { "|" primary }
//! primary   := "..." | ["-"] integer | string | SYM | SYM "(" exprs ")" | "[" exprs "]"
//!            | "{" [ name "=" expr { "," name "=" expr } ] "}"
//! ```
//!
//! Comments (`//` to the end of the line, `/* ... */`) go wherever blanks may.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
pub mod error;
mod parser;
pub mod runner;
pub mod suite;

use std::path::Path;

pub use ast::*;
pub use error::{Error, ParseError};

/// Parse a script from text. `file` names the source in error messages.
pub fn parse_str(file: &str, src: &str) -> Result<Script, ParseError> {
    parser::parse_script(file, src)
}

/// Read and parse a script file.
pub fn parse_file(path: impl AsRef<Path>) -> Result<Script, Error> {
    let path = path.as_ref();
    let src = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(parse_str(&path.display().to_string(), &src)?)
}

/// Parse one event, time column included (`+0 > S. 0:0(0) ack 1 win 65535`): handy to
/// build expectations in tests. The error names the source `<event>`.
pub fn parse_event(src: &str) -> Result<Event, ParseError> {
    parser::parse_event(src)
}

#[cfg(test)]
mod tests;
