import { describe, expect, it } from 'vitest';
import { classifyStatement } from '../../src/isolation/statement-classifier.js';

describe('classifyStatement', () => {
  it.each([
    ['BEGIN', { kind: 'begin', readOnly: undefined }],
    ['begin work', { kind: 'begin', readOnly: undefined }],
    [
      'START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY, NOT DEFERRABLE',
      { kind: 'begin', readOnly: true },
    ],
    ['/* c */ -- x\n BEGIN TRANSACTION READ WRITE;', { kind: 'begin', readOnly: false }],
    ['COMMIT', { kind: 'commit', chain: false }],
    ['END TRANSACTION AND CHAIN', { kind: 'commit', chain: true }],
    ['ABORT', { kind: 'rollback', chain: false }],
    ['ROLLBACK WORK AND NO CHAIN', { kind: 'rollback', chain: false }],
    ['ROLLBACK TO SAVEPOINT "Trx 2"', { kind: 'rollback-to', name: 'Trx 2' }],
    ['rollback transaction to sp', { kind: 'rollback-to', name: 'sp' }],
    ['SAVEPOINT Trx2;', { kind: 'savepoint', name: 'trx2' }],
    ['RELEASE sp', { kind: 'release', name: 'sp' }],
    ['release savepoint "x"""', { kind: 'release', name: 'x"' }],
    ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', { kind: 'set-transaction', readOnly: undefined }],
    ["PREPARE TRANSACTION 'x'", { kind: 'two-phase', command: 'PREPARE TRANSACTION' }],
    ["COMMIT PREPARED 'x'", { kind: 'two-phase', command: 'COMMIT PREPARED' }],
    ['discard all;', { kind: 'discard-all' }],
    ['DISCARD TEMP', { kind: 'other' }],
    ['PREPARE q AS SELECT 1', { kind: 'other' }],
    ['SET search_path TO x', { kind: 'other' }],
    ['SELECT 1 -- BEGIN', { kind: 'other' }],
    ['BEGIN garbage', { kind: 'other' }],
    ['ending_table', { kind: 'other' }],
  ])('%s', (sql, expected) => {
    expect(classifyStatement(sql)).toEqual(expected);
  });
});
