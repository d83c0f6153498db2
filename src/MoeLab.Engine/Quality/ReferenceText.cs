namespace MoeLab.Engine.Quality;

/// <summary>
/// The text quality is measured on when an experiment names none: plain English prose of a few hundred tokens,
/// written for MoeLab (no licence attached to it). Any fixed text serves for comparing strategies with each other;
/// publishable perplexities want a standard corpus passed as the experiment's quality text.
/// </summary>
public static class ReferenceText
{
    public const string Default =
        "The river town woke slowly on market days. Before the sun cleared the hills, the baker had already lit his " +
        "ovens, and the smell of bread drifted down the narrow street toward the water. Fishermen pulled their boats " +
        "onto the gravel and sorted the night's catch into baskets, arguing about prices they would not get. By seven " +
        "the square was full of carts: apples from the orchards on the north slope, cheese wrapped in cloth, jars of " +
        "honey, bundles of firewood, and a man who sold nothing but brass buttons. Children ran between the stalls " +
        "and were chased away from the sweets. The old clock on the town hall had stopped years ago at a quarter past " +
        "three, and nobody minded, because everyone knew the time from the bells of the church across the bridge. " +
        "In the afternoon the wind turned, clouds came in from the sea, and the traders packed what was left. When the " +
        "first drops fell, the square emptied in minutes, and only the pigeons stayed to look for crumbs between the " +
        "stones. That evening, at the inn by the bridge, people counted their coins, told the same stories as the week " +
        "before, and agreed that the next market would surely be better.";
}
