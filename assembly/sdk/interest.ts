// Interest (what a registration waits for) and Readiness (what an event
// reports): the WIT flags `interest` and `readiness`, bit for bit
// (generated/contract.ts).
import {
  INTEREST_READABLE, INTEREST_WRITABLE, READY_ERROR, READY_HANG_UP, READY_READABLE, READY_READ_CLOSED, READY_WRITABLE,
} from "./generated/contract";

export namespace Interest {
  export const READABLE: u32 = INTEREST_READABLE;
  export const WRITABLE: u32 = INTEREST_WRITABLE;
  export const BOTH: u32 = INTEREST_READABLE | INTEREST_WRITABLE;
}

export namespace Readiness {
  export const READABLE: u8 = <u8>READY_READABLE;
  export const WRITABLE: u8 = <u8>READY_WRITABLE;
  export const READ_CLOSED: u8 = <u8>READY_READ_CLOSED;
  export const HANG_UP: u8 = <u8>READY_HANG_UP;
  export const ERROR: u8 = <u8>READY_ERROR;
}
