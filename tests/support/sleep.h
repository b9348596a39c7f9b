/*
 * sleep: the tests' pause between polls and while a gateway gets on.
 */
#ifndef TESTS_SUPPORT_SLEEP_H
#define TESTS_SUPPORT_SLEEP_H

/* Sleep ms milliseconds (0 or more; a signal may cut it short, which a
 * caller polling in a loop does not mind). */
void sleep_ms(long ms);

#endif
