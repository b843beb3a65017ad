"""What every HTTP app of Vroegsignaal shares: problem details, health, reference lists."""
