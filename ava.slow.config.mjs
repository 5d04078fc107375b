// Tests that start a whole process layout (~120 processes on 2 cores): run after the others, one
// at a time, so they neither starve nor are starved by the rest of the suite.
import base from './ava.config.mjs';

export default { ...base, files: ['test/slow/**/*.test.ts'], concurrency: 1 };
