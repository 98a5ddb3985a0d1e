/**
 * One list per error family (an OS's errno, Winsock's, NTSTATUS): each
 * entry names an error, gives its number and the WIT error-code it means
 * (null: known by name, not translated: it is `other`). The number -> code
 * map, the number -> name map and the name -> number constants are all
 * derived from it, so no number is written twice.
 */
import { ErrorCode } from '../generated/contract.js';

export type ErrorEntry = readonly [name: string, value: number, code: ErrorCode | null];

export interface ErrorTable<N extends string> {
  /** The WIT error-code of an error number (`other` when not listed or not translated). */
  code(value: number): ErrorCode;
  /** The error's name, or `${unknown} ${value}`. */
  name(value: number): string;
  /** Each listed name's number. */
  readonly value: Readonly<Record<N, number>>;
}

export function errorTable<const E extends readonly ErrorEntry[]>(
  entries: E,
  unknown: (value: number) => string,
): ErrorTable<E[number][0]> {
  const codes = new Map<number, ErrorCode>();
  const names = new Map<number, string>();
  const value = {} as Record<string, number>;
  for (const [name, v, code] of entries) {
    if (names.has(v) && names.get(v) !== name) throw new Error(`error table: ${v} is both ${names.get(v)} and ${name}`);
    names.set(v, name);
    value[name] = v;
    if (code !== null) codes.set(v, code);
  }
  return {
    code: (v) => codes.get(v) ?? ErrorCode.Other,
    name: (v) => names.get(v) ?? unknown(v),
    value: value as Record<E[number][0], number>,
  };
}
