import { ResponderError } from '../errors.js';
/** Input that is not what it claims to be: the message says what was wrong, the caller adds where. */
export class LogInputError extends ResponderError {
  override readonly name = 'LogInputError';
}
