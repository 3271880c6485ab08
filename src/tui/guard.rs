//! No thread of the workbench leaves the terminal broken.
//!
//! - The panic hook (installed by [`super::TerminalGuard::enter`]) logs every panic. A panic
//!   of the render thread restores the terminal (raw mode off, main screen) before the
//!   message is printed; a panic of any other thread is only logged, because the render
//!   thread still owns the screen and keeps drawing.
//! - Worker and sync threads run each job inside [`catch`]: a panic becomes an `Err` with
//!   a readable message, which the thread sends to the render loop as a message for the
//!   status line; the thread lives on.

use std::panic::{catch_unwind, AssertUnwindSafe, PanicHookInfo};
use std::sync::OnceLock;
use std::thread::ThreadId;

static RENDER_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Records the calling thread as the one that owns the terminal.
pub fn mark_render_thread() {
    let _ = RENDER_THREAD.set(std::thread::current().id());
}

/// Whether the calling thread owns the terminal (the render loop).
pub fn on_render_thread() -> bool {
    RENDER_THREAD.get() == Some(&std::thread::current().id())
}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// One line for the log: where and what.
pub fn describe(info: &PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    let at = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_else(|| "?".into());
    format!(
        "panic in thread {name} at {at}: {}",
        payload_text(info.payload())
    )
}

/// Runs `f`; a panic inside it is logged and returned as `Err("internal error in
/// WHAT: MESSAGE")` instead of unwinding the thread.
pub fn catch<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let text = crate::text::sanitize(&payload_text(p.as_ref())).into_owned();
        tracing::error!(target: "tierdesk::tui", "internal error in {what}: {text}");
        format!("internal error in {what}: {text} (logged; the workbench keeps running)")
    })
}

/// The panic hook's decision: restore the terminal only for a panic of the render thread.
pub fn hook(info: &PanicHookInfo<'_>, restore: impl FnOnce(), previous: impl FnOnce()) {
    tracing::error!(target: "tierdesk::panic", "{}", describe(info));
    if on_render_thread() || RENDER_THREAD.get().is_none() {
        restore();
        previous();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_catch_is_a_message_and_the_thread_lives_on() {
        let r = std::thread::spawn(|| {
            let first: Result<u8, String> = catch("load queue", || panic!("boom \x1b[2J"));
            let second = catch("load queue", || 7u8);
            (first, second)
        })
        .join()
        .expect("the thread itself must not die");
        let err = r.0.unwrap_err();
        assert!(err.contains("internal error in load queue: boom"), "{err}");
        assert!(
            !err.contains('\x1b'),
            "the message is drawn: no escape codes"
        );
        assert_eq!(r.1, Ok(7));
    }
}
