import pg from 'pg';

/**
 * An error shaped like the one the server sends (a node-pg `DatabaseError` with `severity` and `code`),
 * for statements pgtwin answers itself because the server, inside the test transaction, would not fail.
 */
export function serverError(code: string, message: string): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.severity = 'ERROR';
  error.code = code;
  return error;
}

/** A WARNING notice as node-pg emits it on a client's `notice` event. */
export function serverWarning(code: string, message: string): pg.DatabaseError {
  const notice = new pg.DatabaseError(message, message.length, 'notice');
  notice.severity = 'WARNING';
  notice.code = code;
  return notice;
}
