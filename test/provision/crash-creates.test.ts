import { crashSuite } from './crash-suite.js';

crashSuite(['creates', 'reset']);
