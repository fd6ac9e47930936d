/* The program of the hello example: built statically in the Dockerfile's build stage,
 * shipped alone in an image built FROM scratch. */
#include <stdio.h>

#ifndef GREETING
#define GREETING "Hello from distill"
#endif

int main(void)
{
    puts(GREETING);
    return 0;
}
