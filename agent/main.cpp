#include <cstdio>
int main() { std::puts("wincert-agent"); }
