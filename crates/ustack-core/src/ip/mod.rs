//! The IPv4 layer's data structures: routes, the ARP neighbour cache and
//! fragment reassembly. The [`Stack`](crate::stack::Stack) ties them to
//! the wire.
