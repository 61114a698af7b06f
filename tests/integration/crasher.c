/*
 * crasher.c - a "firmware" that crashes the moment it starts, before it could run
 * any OTA code: the bad update of the rollback tests.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    fputs("[E][crasher] crashing at start\n", stdout);
    fflush(stdout);
    abort();
}
