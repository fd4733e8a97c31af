//! RSET, NOOP, QUIT, VRFY and HELP.

use super::{Flow, Session};

impl Session {
    /// RSET: drop the transaction.
    pub(super) fn rset(&mut self) -> Flow {
        self.tx = None;
        self.reply("250 2.0.0 OK");
        Flow::Continue
    }

    /// NOOP.
    pub(super) fn noop(&mut self) -> Flow {
        self.reply("250 2.0.0 OK");
        Flow::Continue
    }

    /// QUIT.
    pub(super) fn quit(&mut self) -> Flow {
        let msg = format!("221 2.0.0 {} closing connection", self.shared.hostname);
        self.reply(&msg);
        Flow::Close
    }

    /// VRFY: never confirms addresses (no harvesting).
    pub(super) fn vrfy(&mut self) -> Flow {
        self.reply("252 2.5.2 cannot verify, but will try delivery");
        Flow::Continue
    }

    /// HELP.
    pub(super) fn help(&mut self) -> Flow {
        self.reply("214 2.0.0 see RFC 5321");
        Flow::Continue
    }
}
