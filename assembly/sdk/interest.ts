// Interest (what a registration waits for) and Readiness (what an event
// reports): the WIT flags `interest` and `readiness`, bit for bit.

export namespace Interest {
  export const READABLE: u32 = 1;
  export const WRITABLE: u32 = 2;
  export const BOTH: u32 = 3;
}

export namespace Readiness {
  export const READABLE: u8 = 1;
  export const WRITABLE: u8 = 2;
  export const READ_CLOSED: u8 = 4;
  export const HANG_UP: u8 = 8;
  export const ERROR: u8 = 16;
}
