//! A host on the simulated wire: a [`Stack`] and the applications that use
//! its sockets.
//!
//! Applications are polled the way a kernel wakes processes: first the
//! stack answers what arrived (ACKs and other immediate replies leave
//! before any application runs), then the applications make their socket
//! calls, then the stack sends what they queued. An application is polled
//! whenever its host has nothing left to send, and at the instant it asks
//! for.

use super::Node;
use crate::stack::Stack;
use crate::time::Instant;

/// Application logic on a simulated host.
pub trait App: core::any::Any {
    /// Makes socket calls on `stack`. Returns an instant at which to be
    /// polled again even if no traffic arrives (a timer), or `None`.
    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant>;
}

impl<F: FnMut(Instant, &mut Stack) -> Option<Instant> + 'static> App for F {
    fn poll(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        self(now, stack)
    }
}

/// A stack and its applications, as one [`Node`] with one port.
pub struct Host {
    pub stack: Stack,
    apps: Vec<Box<dyn App>>,
    app_wakeup: Option<Instant>,
    /// Apps have run since the stack last had something to send.
    apps_ran: bool,
}

impl Host {
    pub fn new(stack: Stack) -> Self {
        Host { stack, apps: Vec::new(), app_wakeup: None, apps_ran: false }
    }

    /// Adds an application; it is first polled at the next step.
    pub fn add_app(&mut self, app: impl App) {
        self.apps.push(Box::new(app));
        self.apps_ran = false;
    }

    pub fn with_app(mut self, app: impl App) -> Self {
        self.add_app(app);
        self
    }

    /// The `index`-th application added, if it is a `T`.
    pub fn app<T: App>(&self, index: usize) -> Option<&T> {
        let app: &dyn core::any::Any = self.apps.get(index)?.as_ref();
        app.downcast_ref()
    }

    pub fn app_mut<T: App>(&mut self, index: usize) -> Option<&mut T> {
        let app: &mut dyn core::any::Any = self.apps.get_mut(index)?.as_mut();
        app.downcast_mut()
    }

    fn run_apps(&mut self, now: Instant) {
        let mut wake: Option<Instant> = None;
        for app in &mut self.apps {
            if let Some(t) = app.poll(now, &mut self.stack) {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        }
        self.app_wakeup = wake.filter(|&t| t > now);
        self.apps_ran = true;
    }
}

impl Node for Host {
    fn handle_frame(&mut self, now: Instant, _port: usize, frame: &[u8]) {
        self.stack.handle_input(now, frame);
        self.apps_ran = false;
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        if let Some(n) = self.stack.poll_transmit(now, buf) {
            self.apps_ran = false;
            return Some((0, n));
        }
        if self.apps_ran {
            return None;
        }
        self.run_apps(now);
        self.stack.poll_transmit(now, buf).map(|n| {
            self.apps_ran = false;
            (0, n)
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        [self.stack.poll_timeout(), self.app_wakeup].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.stack.handle_timeout(now);
        if self.app_wakeup.is_some_and(|t| t <= now) {
            self.app_wakeup = None;
        }
        self.apps_ran = false;
    }
}
