//! The IPv4 layer's data structures: routes, the ARP neighbour cache,
//! fragment reassembly and the path MTU of each destination. The
//! [`Stack`](crate::stack::Stack) ties them to the wire.

pub mod frag;
pub mod neighbor;
pub mod pmtu;
pub mod route;

pub use frag::{
    FragError, FragKey, FragPiece, FragPlan, Reassembler, ReassemblyConfig, ReassemblyStats, TimedOut, fragment_plan,
};
pub use neighbor::{
    Enqueued, HardwareAddr, NeighborCache, NeighborConfig, NeighborState, NeighborStats, TimeoutActions,
};
pub use route::{Route, RouteError, Routes};
