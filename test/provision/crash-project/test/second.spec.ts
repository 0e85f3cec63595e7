import { seesTheTwin } from './sees-the-twin.js';

seesTheTwin('second');
