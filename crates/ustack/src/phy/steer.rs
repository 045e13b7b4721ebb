//! The steering program of a multi-queue TUN device: which queue (which
//! shard) each packet the kernel sends to the device goes to.
//!
//! Without one, the kernel steers a flow by a hash with a secret seed,
//! remembered per flow only for a few seconds after user space last wrote
//! a packet of it; a connection a shard opened could then go quiet and
//! come back on another queue, where no stack knows it. With this program
//! the queue is a function of the ports alone, the rule of
//! [`ustack_core::stack::Shard`], so each shard can choose ports that come
//! back to itself:
//!
//! - TCP: source port XOR destination port (the same both ways), mixed;
//! - UDP: the destination port, which is ustack's own, mixed;
//! - ICMP errors (destination unreachable, time exceeded, parameter
//!   problem): the rule applied to the packet they quote, which ustack
//!   sent, so that a connection learns of its own errors;
//! - ICMP echo requests and replies: the identifier, mixed, so that a
//!   shard that pings with an identifier of its own gets the replies;
//! - anything else (fragments, other protocols): queue 0.
//!
//! "Mixed" is the high half of the 32-bit product with
//! [`ustack_core::stack::shard::MIX`], so every bit of the ports counts.
//! The kernel takes the program's result modulo the number of queues.
//! The program is classic socket-filter eBPF: byte loads relative to the
//! packet (`LD_ABS`/`LD_IND`, which return in host order and end the
//! program with 0 when out of bounds). `LD_*` use r6 as the packet and
//! clobber r0 to r5; r7 holds the transport header's offset, r8 scratch.

use ustack_core::stack::shard::MIX;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Insn {
    code: u8,
    /// Destination register in the low nibble, source in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LD_ABS_B: u8 = 0x30;
const LD_ABS_H: u8 = 0x28;
const LD_IND_B: u8 = 0x50;
const LD_IND_H: u8 = 0x48;
const MOV64_IMM: u8 = 0xb7;
const MOV64_REG: u8 = 0xbf;
const ADD64_IMM: u8 = 0x07;
const ADD64_REG: u8 = 0x0f;
const AND64_IMM: u8 = 0x57;
const LSH64_IMM: u8 = 0x67;
const RSH64_IMM: u8 = 0x77;
const XOR64_REG: u8 = 0xaf;
const MUL32_IMM: u8 = 0x24;
const RSH32_IMM: u8 = 0x74;
const JEQ_IMM: u8 = 0x15;
const JNE_IMM: u8 = 0x55;
const JA: u8 = 0x05;
const EXIT: u8 = 0x95;

const IPPROTO_ICMP: i32 = 1;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;

/// Places a jump may go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Tcp,
    Udp,
    Icmp,
    Echo,
    Quoted,
    QuotedUdp,
    Mix,
    Other,
}

/// A tiny assembler: instructions, jumps to labels resolved at the end.
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn { code, regs: dst | (src << 4), off, imm });
    }
    fn label(&mut self, l: Label) {
        self.labels.push((l, self.insns.len()));
    }
    /// A conditional jump (`code` with an immediate) or `JA`.
    fn jump(&mut self, code: u8, reg: u8, imm: i32, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.op(code, reg, 0, 0, imm);
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, to) in self.jumps {
            let target = self.labels.iter().find(|(l, _)| *l == to).map(|&(_, i)| i).expect("every label is placed");
            // Offsets count from the instruction after the jump.
            self.insns[at].off = (target as isize - at as isize - 1) as i16;
        }
        self.insns
    }
}

/// The program, as the kernel loads it.
pub(crate) fn program() -> Vec<Insn> {
    use Label::*;
    let mut a = Asm { insns: Vec::new(), jumps: Vec::new(), labels: Vec::new() };
    a.op(MOV64_REG, R6, R1, 0, 0);
    // Version and header length.
    a.op(LD_ABS_B, 0, 0, 0, 0);
    a.op(MOV64_REG, R7, R0, 0, 0);
    a.op(AND64_IMM, R7, 0, 0, 0x0f);
    a.op(LSH64_IMM, R7, 0, 0, 2);
    a.op(RSH64_IMM, R0, 0, 0, 4);
    a.jump(JNE_IMM, R0, 4, Other);
    // A fragment (MF set, or an offset) may lack the ports.
    a.op(LD_ABS_H, 0, 0, 0, 6);
    a.op(AND64_IMM, R0, 0, 0, 0x3fff);
    a.jump(JNE_IMM, R0, 0, Other);
    a.op(LD_ABS_B, 0, 0, 0, 9);
    a.jump(JEQ_IMM, R0, IPPROTO_TCP, Tcp);
    a.jump(JEQ_IMM, R0, IPPROTO_UDP, Udp);
    a.jump(JEQ_IMM, R0, IPPROTO_ICMP, Icmp);
    a.jump(JA, 0, 0, Other);

    a.label(Tcp);
    a.op(LD_IND_H, 0, R7, 0, 0);
    a.op(MOV64_REG, R8, R0, 0, 0);
    a.op(LD_IND_H, 0, R7, 0, 2);
    a.op(XOR64_REG, R0, R8, 0, 0);
    a.jump(JA, 0, 0, Mix);

    a.label(Udp);
    a.op(LD_IND_H, 0, R7, 0, 2);
    a.jump(JA, 0, 0, Mix);

    a.label(Icmp);
    a.op(LD_IND_B, 0, R7, 0, 0);
    a.jump(JEQ_IMM, R0, 0, Echo);
    a.jump(JEQ_IMM, R0, 8, Echo);
    a.jump(JEQ_IMM, R0, 3, Quoted);
    a.jump(JEQ_IMM, R0, 11, Quoted);
    a.jump(JEQ_IMM, R0, 12, Quoted);
    a.jump(JA, 0, 0, Other);

    // Echo request or reply: the identifier.
    a.label(Echo);
    a.op(LD_IND_H, 0, R7, 0, 4);
    a.jump(JA, 0, 0, Mix);

    // The quoted packet starts after the 8-byte ICMP header.
    a.label(Quoted);
    a.op(ADD64_IMM, R7, 0, 0, 8);
    a.op(LD_IND_B, 0, R7, 0, 0);
    a.op(MOV64_REG, R8, R0, 0, 0);
    a.op(AND64_IMM, R8, 0, 0, 0x0f);
    a.op(LSH64_IMM, R8, 0, 0, 2);
    a.op(LD_IND_B, 0, R7, 0, 9);
    a.op(ADD64_REG, R7, R8, 0, 0);
    a.jump(JEQ_IMM, R0, IPPROTO_TCP, Tcp);
    a.jump(JEQ_IMM, R0, IPPROTO_UDP, QuotedUdp);
    a.jump(JA, 0, 0, Other);

    // A quoted datagram went from our port: its source.
    a.label(QuotedUdp);
    a.op(LD_IND_H, 0, R7, 0, 0);

    // 32-bit operations: the product wraps at 2^32, as in `Shard`.
    a.label(Mix);
    a.op(MUL32_IMM, R0, 0, 0, MIX as i32);
    a.op(RSH32_IMM, R0, 0, 0, 16);
    a.op(EXIT, 0, 0, 0, 0);

    a.label(Other);
    a.op(MOV64_IMM, R0, 0, 0, 0);
    a.op(EXIT, 0, 0, 0, 0);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_program_and_it_ends_in_exit() {
        let p = program();
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        for (i, insn) in p.iter().enumerate() {
            if matches!(insn.code, JEQ_IMM | JNE_IMM | JA) {
                let to = i as isize + 1 + insn.off as isize;
                assert!(to >= 0 && (to as usize) < p.len() && to != i as isize, "jump at {i} to {to}");
            }
        }
    }
}
