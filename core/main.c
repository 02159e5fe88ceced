#include <stdio.h>
int main(void) { puts("mcrt"); return 0; }
