/** Input that is not what it claims to be: the message says what was wrong, the caller adds where. */
export class LogInputError extends Error {
  override readonly name = 'LogInputError';
}
