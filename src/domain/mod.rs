//! The values every capability shares, depending on none of them: a session and its status, the
//! host ports a cluster publishes, graded exams and email addresses. The store keeps
//! these and the services pass them around; where one crosses to a page or an API client it is
//! the wire type of `app::api` itself.

mod email;
mod passes;
mod ports;
mod session;

pub use app::api::{ExamResult, GradedTask, SessionStatus};
pub use email::{Email, InvalidEmail};
pub use passes::{NewPass, Pass, PassSource, PassType};
pub use ports::{PortRanges, PortSet};
pub use session::Session;
