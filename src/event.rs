//! What the library has to say while it works. It never prints: every operation that has
//! progress or warnings to tell takes a [`Reporter`], and the binary decides how each
//! [`Event`] looks (dokku's `-----> ` steps, `       ` details, ` !     ` warnings).

use std::sync::Mutex;

/// One thing worth telling the person at the terminal, at the moment it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A step of the work, begun or done ("Certificate retrieved successfully.").
    Step(String),
    /// A detail under the current step ("Reloading nginx").
    Detail(String),
    /// Something the user should know or fix; the command goes on.
    Warning(String),
}

/// Where events go. `Sync`, so that work done in parallel (many apps at once) can report
/// through the one reporter the command owns.
pub trait Reporter: Sync {
    /// Takes one event; it must not fail or block for long.
    fn report(&self, event: Event);
}

/// A closure is a reporter: `&|event| shell.print(event)`.
impl<F: Fn(Event) + Sync> Reporter for F {
    fn report(&self, event: Event) {
        self(event)
    }
}

/// Keeps every event, in order: for callers that show them later, and for tests.
#[derive(Debug, Default)]
pub struct Collected(Mutex<Vec<Event>>);

impl Collected {
    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Reporter for Collected {
    fn report(&self, event: Event) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event);
    }
}

/// Drops every event: for work whose outcome alone matters (a recovery at start-up whose
/// warnings are returned, a benchmark).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Reporter for Quiet {
    fn report(&self, _event: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closure_and_a_collector_both_receive_events_in_order() {
        let collected = Collected::default();
        let forward = |event: Event| collected.report(event);
        forward.report(Event::Step("one".into()));
        forward.report(Event::Warning("two".into()));
        assert_eq!(
            collected.events(),
            vec![Event::Step("one".into()), Event::Warning("two".into())]
        );
    }
}
